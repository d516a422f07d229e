// A native app signing in with the unmodified openid-client (v6): it listens on a loopback
// port of its own choosing (RFC 8252), pushes its authorization request (PAR) with a DPoP
// proof, exchanges the code, reads userinfo, renews with its refresh token and signs out,
// every token request and userinfo call proven with its DPoP key.
//
// Usage: node sign_in.mjs ISSUER CLIENT_ID
// It prints one JSON object per line: {"event": "authorize", "url"} when the person must
// sign in at that URL in a browser, {"event": "logout", "url"} when the browser must go
// there to sign out, and {"event": "done", ...} with what it saw, or {"event": "error"}.

import http from "node:http";
import * as client from "openid-client";

const [issuer, clientId] = process.argv.slice(2);
const emit = (event) => process.stdout.write(JSON.stringify(event) + "\n");

function listen() {
  // The browser comes back here: the first request to each path is answered and handed over.
  const waiting = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${server.address().port}`);
    res.writeHead(200, { "Content-Type": "text/html" }).end(`<p id="native-app">${url.pathname}: you can close this window.</p>`);
    waiting.get(url.pathname)?.(url);
  });
  const next = (path) => new Promise((resolve) => waiting.set(path, resolve));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, next })));
}

async function main() {
  const { server, next } = await listen();
  const base = `http://127.0.0.1:${server.address().port}`;
  const redirect_uri = `${base}/callback`;
  const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
    execute: [client.allowInsecureRequests], // the test provider is plain http on loopback
  });
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair());

  const code_verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri,
    scope: "openid profile email offline_access",
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: "S256",
    state,
  }, { DPoP });
  const callback = next("/callback");
  emit({ event: "authorize", url: authorizationUrl.href });

  const tokens = await client.authorizationCodeGrant(config, await callback, {
    pkceCodeVerifier: code_verifier, expectedState: state,
  }, undefined, { DPoP });
  const { sub } = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, sub, { DPoP });

  const renewed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  const userinfoAfterRenewal = await client.fetchUserInfo(config, renewed.access_token, sub, { DPoP });

  // Without the key the refresh token is worth nothing (a public client's is bound).
  let withoutKey;
  try {
    await client.refreshTokenGrant(config, renewed.refresh_token);
    withoutKey = "accepted";
  } catch (err) {
    withoutKey = err.error ?? err.code ?? err.message;
  }

  const signedOut = next("/signed-out");
  emit({
    event: "logout",
    url: client.buildEndSessionUrl(config, {
      id_token_hint: renewed.id_token ?? tokens.id_token,
      post_logout_redirect_uri: `${base}/signed-out`,
      state: "bye",
    }).href,
  });
  const back = await signedOut;

  emit({
    event: "done",
    sub,
    token_type: tokens.token_type,
    renewed_token_type: renewed.token_type,
    refresh_rotated: renewed.refresh_token !== tokens.refresh_token,
    userinfo,
    userinfo_after_renewal: userinfoAfterRenewal,
    refresh_without_key: withoutKey,
    redirect_port: server.address().port,
    logout_state: back.searchParams.get("state"),
  });
  server.close();
}

main().catch((err) => {
  emit({ event: "error", name: err.name, message: err.message, error: err.error, cause: String(err.cause ?? "") });
  process.exit(1);
});
