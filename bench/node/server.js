// Reference OpenID Provider for bench/tokens.py: node-oidc-provider with one
// confidential client that may only use the client_credentials grant.
//
// Usage: node server.js [PORT]   (or PORT=... node server.js)
//        BENCH_NODE_WORKERS=N node server.js PORT   (N processes via node:cluster, default 1)
//
// Listens on 127.0.0.1 only. Everything (tokens, grants) lives in the
// provider's built-in in-memory adapter, which is a bounded LRU store.

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import process from 'node:process';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.argv[2] || process.env.PORT || '3000', 10);
const WORKERS = Math.max(1, Number.parseInt(process.env.BENCH_NODE_WORKERS || '1', 10));
const ISSUER = `http://${HOST}:${PORT}`;
// Resource indicator every client_credentials token is issued for (RFC 8707).
const RESOURCE = 'urn:bench:api';

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

function startProvider({ jwk, cookieKey }) {
  const configuration = {
    clients: [
      {
        client_id: 'bench',
        client_secret: 'bench-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'api',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [cookieKey] },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Resource indicators are how oidc-provider decides the audience and the
      // format of access tokens. Every client_credentials request without a
      // `resource` parameter is defaulted to RESOURCE, whose access tokens are
      // opaque (a random reference stored in the adapter, like idp's).
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
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
    },
    findAccount: async () => undefined,
  };

  const provider = new Provider(ISSUER, configuration);
  provider.on('server_error', (ctx, err) => {
    console.error('server_error', err);
  });

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
  console.log(`node-oidc-provider primary pid=${process.pid} forking ${WORKERS} workers`);
} else {
  startProvider(keyMaterial());
}
