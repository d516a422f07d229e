// Reference OpenID Provider for bench/tokens.py: node-oidc-provider with one
// confidential client for the client_credentials and refresh_token grants and
// token introspection.
//
// Usage: node server.js [PORT]   (or PORT=... node server.js)
//        BENCH_NODE_WORKERS=N node server.js PORT   (N processes via node:cluster, default 1)
//        BENCH_NODE_POOL=FILE          refresh tokens to pre-issue, one a line; read again
//                                      and issued on SIGUSR2 (to the primary); each process
//                                      appends "PID COUNT" to FILE.issued when it has
//                                      issued a reading of FILE
//        BENCH_NODE_ACCESS_TOKEN=VALUE an access token to pre-issue (for introspection)
//        BENCH_NODE_REDIS=URL          keep everything in this Redis (redis_adapter.js),
//                                      under the keys BENCH_NODE_REDIS_PREFIX (default
//                                      "bench-node:"), shared by every process
//
// Listens on 127.0.0.1 only. Without BENCH_NODE_REDIS, everything (tokens,
// grants) lives in the provider's built-in in-memory adapter, in two stores: client-credentials
// tokens in the package's bounded LRU (1,000 entries, as its default store),
// everything else (grants, refresh and access tokens) in a store of the same
// kind without a bound, so that no load evicts the pre-issued pool. Each
// process has its own store: every worker pre-issues the same pool (same
// values, each its own grant of one account, scope "openid offline_access", as
// if a code exchange had issued them), so any worker can rotate any of them;
// bench/tokens.py sends each refresh token once. With BENCH_NODE_REDIS every
// process reads and writes the same store, as a deployment of several
// processes must (a token rotated in one process is rotated everywhere), and
// the first worker alone issues the pool into it.

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import process from 'node:process';

import Provider from 'oidc-provider';
// The package's own in-memory adapter and its LRU.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.argv[2] || process.env.PORT || '3000', 10);
const WORKERS = Math.max(1, Number.parseInt(process.env.BENCH_NODE_WORKERS || '1', 10));
const ISSUER = `http://${HOST}:${PORT}`;
// Resource indicator every client_credentials token is issued for (RFC 8707).
const RESOURCE = 'urn:bench:api';
const ACCOUNT_ID = 'bench-account';
const POOL_SCOPE = 'openid offline_access';
const REDIS_URL = process.env.BENCH_NODE_REDIS || '';
// The process that writes the pool: each, with a store of its own; the first worker, with Redis.
const ISSUES_POOL = !REDIS_URL || !cluster.isWorker || cluster.worker.id === 1;
const DAY = 24 * 3600;

function readPool() {
  const file = process.env.BENCH_NODE_POOL;
  if (!file) return [];
  return readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0);
}

if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error(`invalid port: ${process.argv[2] || process.env.PORT}`);
  process.exit(2);
}

// With several workers, the signing key and cookie keys must be identical in
// every process; the primary generates them and hands them down via env.
function keyMaterial() {
  if (process.env.BENCH_NODE_JWK && process.env.BENCH_NODE_COOKIE_KEY) {
    return {
      jwk: JSON.parse(process.env.BENCH_NODE_JWK),
      cookieKey: process.env.BENCH_NODE_COOKIE_KEY,
    };
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', use: 'sig', alg: 'RS256' };
  return { jwk, cookieKey: randomBytes(32).toString('hex') };
}

async function startProvider({ jwk, cookieKey }) {
  // Client-credentials tokens (a store write per request, never read again
  // here) in a bounded LRU; the pool (a grant and a refresh token each, and a
  // new refresh token and access token per rotation) where nothing is evicted.
  // With BENCH_NODE_REDIS, all of it in Redis.
  let adapter;
  if (REDIS_URL) {
    const { default: createRedisAdapter } = await import('./redis_adapter.js');
    adapter = createRedisAdapter(REDIS_URL, process.env.BENCH_NODE_REDIS_PREFIX || 'bench-node:');
  } else {
    const credentials = new LRU({ maxSize: 1000 });
    const store = new LRU({ maxSize: Number.POSITIVE_INFINITY });
    adapter = (model) => new MemoryAdapter(model, model === 'ClientCredentials' ? credentials : store);
  }
  const configuration = {
    adapter,
    clients: [
      {
        client_id: 'bench',
        client_secret: 'bench-secret',
        grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [`http://${HOST}:9/callback`],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: `api ${POOL_SCOPE}`,
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [cookieKey] },
    scopes: ['api', 'openid', 'offline_access'],
    // Every refresh rotates the refresh token, as idp does.
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // The package's default policy, stated to silence its warning.
        allowedPolicy: async (ctx, client, token) => !(client.clientAuthMethod === 'none'
          && token.clientId !== ctx.oidc.client.clientId),
      },
      // Resource indicators are how oidc-provider decides the audience and the
      // format of access tokens. Every client_credentials request without a
      // `resource` parameter is defaulted to RESOURCE, whose access tokens are
      // opaque (a random reference stored in the adapter, like idp's). Refreshed
      // tokens have no resource: opaque access tokens for the userinfo endpoint.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx) => (
          ctx.oidc.params.grant_type === 'client_credentials' ? RESOURCE : undefined),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: 'api',
            audience: RESOURCE,
            accessTokenTTL: 3600,
            accessTokenFormat: 'opaque',
          };
        },
      },
    },
    ttl: {
      ClientCredentials: () => 3600,
      AccessToken: () => 3600,
      IdToken: () => 3600,
      RefreshToken: () => 14 * DAY,
      Grant: () => 14 * DAY,
    },
    findAccount: async (ctx, id) => (id === ACCOUNT_ID
      ? { accountId: id, claims: async () => ({ sub: id }) }
      : undefined),
  };

  const provider = new Provider(ISSUER, configuration);
  provider.on('server_error', (ctx, err) => {
    console.error('server_error', err);
  });
  // The pool at start, and a new one on each SIGUSR2, issued after any earlier
  // one. The listener is in place before the first pool is acknowledged, so no
  // SIGUSR2 meets the signal's default action (ending the process).
  let issuing = preIssue(provider, readPool(), process.env.BENCH_NODE_ACCESS_TOKEN);
  process.on('SIGUSR2', () => {
    issuing = issuing.then(() => preIssue(provider, readPool())).catch((err) => {
      console.error('could not pre-issue', err);
      process.exit(1);
    });
  });
  await issuing;

  const server = provider.listen(PORT, HOST, () => {
    console.log(`node-oidc-provider pid=${process.pid} listening on ${ISSUER}`);
  });
  // wrk keeps connections open; do not let Node's defaults cut them short.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// The pool: for each value of the pool file, a grant of one account to the
// client (a family of its own, as each sign-in starts one) and a refresh token
// of that grant, and one access token for introspection, stored as a code
// exchange would have stored them. One grant for the whole pool would cost
// the memory adapter a walk over all of the grant's tokens at every save.
// Grants are numbered across calls, so a later pool never replaces one.
let grants = 0;
async function preIssue(provider, pool, accessToken) {
  const client = await provider.Client.find('bench');
  const authTime = Math.floor(Date.now() / 1000);
  const family = async () => {
    grants += 1;
    const grantId = `bench-grant-${grants}`;
    const grant = new provider.Grant({ jti: grantId, accountId: ACCOUNT_ID, clientId: client.clientId });
    grant.addOIDCScope(POOL_SCOPE);
    await grant.save();
    return {
      client, accountId: ACCOUNT_ID, grantId, scope: POOL_SCOPE, gty: 'authorization_code', authTime,
    };
  };
  if (ISSUES_POOL) {
    for (const jti of pool) {
      await new provider.RefreshToken({ ...(await family()), jti }).save();
    }
    if (accessToken) {
      const at = new provider.AccessToken({ ...(await family()), jti: accessToken });
      at.format = 'opaque'; // what generateTokenId sets for a token it names itself
      await at.save();
    }
    console.log(`pid=${process.pid} pre-issued ${pool.length} refresh tokens${accessToken ? ' and an access token' : ''}`);
  } else {
    console.log(`pid=${process.pid} shares the pool the first worker issues`);
  }
  if (process.env.BENCH_NODE_POOL) {
    appendFileSync(`${process.env.BENCH_NODE_POOL}.issued`, `${process.pid} ${pool.length}\n`);
  }
}

if (WORKERS > 1 && cluster.isPrimary) {
  const { jwk, cookieKey } = keyMaterial();
  const env = { BENCH_NODE_JWK: JSON.stringify(jwk), BENCH_NODE_COOKIE_KEY: cookieKey };
  for (let i = 0; i < WORKERS; i += 1) cluster.fork(env);
  let stopping = false;
  const stopAll = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
  };
  cluster.on('exit', () => {
    if (!stopping) {
      console.error('a worker exited unexpectedly; stopping');
      stopAll();
    } else if (Object.keys(cluster.workers).length === 0) {
      process.exit(0);
    }
  });
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
  process.on('SIGUSR2', () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGUSR2');
  });
  console.log(`node-oidc-provider primary pid=${process.pid} forking ${WORKERS} workers`);
} else {
  startProvider(keyMaterial()).catch((err) => {
    console.error('could not start', err);
    process.exit(1);
  });
}
