// A single-page app on its own origin, signing in with oidc-client-ts as documented:
// code + PKCE, userinfo, refresh, RP-initiated logout; with DPoP when its config says so.
// The page's directory (/plain/, /dpop/) picks the config the test server serves there.

const config = await (await fetch("config.json")).json();
const here = new URL(".", location.href).href;

const settings = {
  authority: config.authority,
  client_id: config.client_id,
  redirect_uri: here,
  post_logout_redirect_uri: here + "?signed-out",
  scope: "openid profile email offline_access",
  response_type: "code",
  // The library's own userinfo request sends the Bearer scheme; a DPoP-bound token needs
  // the app's request below.
  loadUserInfo: !config.dpop,
  automaticSilentRenew: false,
  userStore: new oidc.WebStorageStateStore({ store: window.localStorage }),
};
if (config.dpop) {
  settings.dpop = { store: new oidc.IndexedDbDPoPStore(), bind_authorization_code: true };
}
const manager = new oidc.UserManager(settings);
let dpopNonce;

const $ = (id) => document.getElementById(id);
const show = (user) => {
  $("token-type").textContent = user.token_type;
  $("claims").textContent = JSON.stringify(user.profile, null, 2);
};
const fail = (err) => {
  $("error").textContent = `${err.name}: ${err.message}`;
  $("status").textContent = "error";
};

async function userinfo() {
  const user = await manager.getUser();
  const url = (await manager.metadataService.getMetadata()).userinfo_endpoint;
  const request = async () => {
    const headers = { Authorization: `${user.token_type} ${user.access_token}` };
    if (config.dpop) {
      headers.DPoP = await manager.dpopProof(url, user, "GET", dpopNonce);
    }
    const response = await fetch(url, { headers });
    dpopNonce = response.headers.get("DPoP-Nonce") || dpopNonce;
    return response;
  };
  let response = await request();
  if (response.status === 401 && (response.headers.get("WWW-Authenticate") || "").includes("use_dpop_nonce")) {
    response = await request();
  }
  if (!response.ok) {
    throw new Error(`userinfo ${response.status}: ${response.headers.get("WWW-Authenticate")}`);
  }
  $("userinfo-result").textContent = JSON.stringify(await response.json(), null, 2);
}

$("login").onclick = () => manager.signinRedirect().catch(fail);
$("userinfo").onclick = () => userinfo().catch(fail);
$("renew").onclick = async () => {
  try {
    const before = await manager.getUser();
    const user = await manager.signinSilent();
    if (!user || user.refresh_token === before.refresh_token || user.access_token === before.access_token) {
      throw new Error("the renewal brought no new tokens");
    }
    show(user);
    $("renewals").textContent = String(Number($("renewals").textContent) + 1);
    $("status").textContent = "renewed";
  } catch (err) {
    fail(err);
  }
};
$("logout").onclick = () => manager.signoutRedirect().catch(fail);

try {
  const params = new URLSearchParams(location.search);
  if (params.has("code") || params.has("error")) {
    const user = await manager.signinCallback();
    history.replaceState(null, "", here);
    show(user);
    $("status").textContent = "signed-in";
  } else if (params.has("signed-out")) {
    await manager.signoutCallback();
    await manager.removeUser();
    $("status").textContent = "signed-out";
  } else {
    const user = await manager.getUser();
    $("status").textContent = user ? "signed-in" : "signed-out";
    if (user) show(user);
  }
} catch (err) {
  fail(err);
}
