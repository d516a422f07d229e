// node-oidc-provider's storage in Redis, shared by every process of the
// server: what a deployment of several processes needs, where the package's
// in-memory adapter keeps each process's tokens to itself (a refresh token
// rotated in one process could be rotated again in another, and a restart
// loses every token). Laid out as the package's documented example adapter
// for Redis: a key a record, consumable records in a hash so that consume()
// sets one field, and each grant's keys in a list for revokeByGrantId().
//
// Usage: createRedisAdapter('redis://127.0.0.1:6379/0', 'prefix:') returns the
// `adapter` of the provider's configuration.

import Redis from 'ioredis';

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

const CONSUMABLE = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
  'PushedAuthorizationRequest',
]);

class RedisAdapter {
  constructor(model, client, prefix) {
    this.model = model;
    this.client = client;
    this.prefix = prefix;
  }

  key(id) {
    return `${this.prefix}${this.model}:${id}`;
  }

  grantKey(grantId) {
    return `${this.prefix}grant:${grantId}`;
  }

  indexKey(kind, value) {
    return `${this.prefix}${kind}:${value}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const multi = this.client.multi();
    if (CONSUMABLE.has(this.model)) {
      multi.hset(key, { payload: JSON.stringify(payload) });
    } else {
      multi.set(key, JSON.stringify(payload));
    }
    if (expiresIn) multi.expire(key, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const grantKey = this.grantKey(payload.grantId);
      multi.rpush(grantKey, key);
      // The grant's list lives as long as its longest-lived token. A round trip of its own, as
      // in the package's example (a refresh saves two such tokens, so it counts against node).
      const ttl = await this.client.ttl(grantKey);
      if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
    }
    for (const [kind, value] of [['userCode', payload.userCode], ['uid', payload.uid]]) {
      if (value) {
        multi.set(this.indexKey(kind, value), id);
        if (expiresIn) multi.expire(this.indexKey(kind, value), expiresIn);
      }
    }
    await multi.exec();
  }

  async find(id) {
    const key = this.key(id);
    if (!CONSUMABLE.has(this.model)) {
      const data = await this.client.get(key);
      return data ? JSON.parse(data) : undefined;
    }
    const { payload, ...fields } = await this.client.hgetall(key);
    if (!payload) return undefined;
    return { ...fields, ...JSON.parse(payload) };
  }

  async findByUid(uid) {
    const id = await this.client.get(this.indexKey('uid', uid));
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = await this.client.get(this.indexKey('userCode', userCode));
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    await this.client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
  }

  async destroy(id) {
    await this.client.del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = this.grantKey(grantId);
    const keys = await this.client.lrange(grantKey, 0, -1);
    const multi = this.client.multi();
    for (const key of keys) multi.del(key);
    multi.del(grantKey);
    await multi.exec();
  }
}

export default function createRedisAdapter(url, prefix) {
  const client = new Redis(url, { lazyConnect: false });
  return (model) => new RedisAdapter(model, client, prefix);
}
