"""Malformed input at every endpoint: never a 500, never a traceback in the body.

Hypothesis generates query strings and bodies (control characters, huge values,
unicode, repeated keys, empty values, ``key[]`` arrays), wrong content types,
oversized bodies, odd methods and bogus Authorization headers. Where the protocol
is unambiguous the status class is checked as well: /token errors are 400 or 401
with a JSON ``error``; /authorize never redirects for an unknown client and sends
a missing PKCE challenge back to the registered redirect URI.

Exceptions propagate out of the test client (TESTING), so an unhandled error in a
view shows up here as a failed example with its traceback: in production it would
be a 500.

This module holds what the tests of this package share: the Hypothesis strategies, the
checks every answer passes, and the placeholders a test resolves."""

from __future__ import annotations

import base64
import json
import re
import traceback
from urllib.parse import quote, quote_from_bytes, urlencode, urlsplit

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.helpers import ISSUER, POST_LOGOUT_URI, REDIRECT_URI, Browser, basic, code_from_mail, pkce_pair

MAX_BODY = 64 * 1024

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEWER = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MORE = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

GET_PATHS = [
    "/.well-known/openid-configuration",
    "/jwks.json",
    "/authorize",
    "/userinfo",
    "/logout",
    "/account",
    "/signin",
    "/",
    "/dev/mailbox",
    "/login/{random_flow}",
    "/signup",
    "/signup/flow/{random_flow}",
    "/firm",
    "/administrations/{random_flow}/access",
]
POST_PATHS = ["/authorize", "/par", "/token", "/userinfo", "/introspect", "/revoke", "/logout", "/login/{random_flow}",
              "/signup/flow/{random_flow}", "/administrations/{random_flow}/access",
              "/login/{random_flow}/passkey-options", "/account/security/passkeys/options", "/account/security/passkeys",
              "/account/security/passkeys/remove"]
GET_ONLY_PATHS = ["/.well-known/openid-configuration", "/jwks.json", "/account", "/signin", "/", "/dev/mailbox"]
ALL_PATHS = sorted(set(GET_PATHS) | set(POST_PATHS))

LOGIN_STATES = ["email", "password", "verify_email", "email_code", "totp_enroll", "totp", "resume", "consent", "done"]
TOKEN_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope",
                "invalid_dpop_proof", "use_dpop_nonce"}

PARAM_NAMES = [
    "response_type", "client_id", "client_secret", "redirect_uri", "scope", "state", "nonce",
    "code_challenge", "code_challenge_method", "response_mode", "prompt", "max_age", "login_hint",
    "id_token_hint", "ui_locales", "claims", "request", "request_uri", "display", "acr_values",
    "grant_type", "code", "code_verifier", "refresh_token", "token", "token_type_hint", "access_token",
    "post_logout_redirect_uri", "confirm", "csrf_token", "lang", "_flow", "email", "password",
    "email_code", "totp_code", "decision", "action", "client_assertion", "client_assertion_type", "dpop_jkt",
]

# Values that stand for something only known once the fixtures exist.
PLACEHOLDERS = [
    "{client_id}", "{client_secret}", "{third_client_id}", "{redirect_uri}", "{post_logout_uri}",
    "{challenge}", "{email}", "{password}", "{flow_id}", "{id_token}",
]

# -- strategies ----------------------------------------------------------------------

CONTROL = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x1F),
        st.sampled_from("\x7f\x85\xa0\u200b\u200d\u2028\u2029\u202e\ufeff\ufffd\uffff"),
    ),
    min_size=1,
    max_size=20,
)
UNICODE = st.text(
    alphabet=st.characters(min_codepoint=0x80, exclude_categories=["Cs"]),
    min_size=1,
    max_size=20,
)
HUGE = st.builds(
    lambda chunk, n: chunk * n,
    st.sampled_from(["a", "\xe9", "\U0001f600", "%", "\x00", " ", "&", "=", "openid ", "../"]),
    st.integers(1_000, 12_000),
)
ODD_VALUES = st.sampled_from([
    "", " ", "null", "None", "true", "[]", "{}", "[object Object]", "%", "%zz", "%00", "%ff%fe", "+", "&", "=",
    "-1", "0", "1e3", "1e309", "NaN", "inf", "99999999999999999999999999999", "\u0663", " 5 ", "5_0",
    "code", "token", "id_token", "code id_token", "none", "login", "consent", "select_account", "none login",
    "openid", "openid profile email offline_access administrations", "openid bogus", "S256", "plain", "s256",
    "query", "form_post", "fragment", "yes", "allow", "deny", "restart", "resend",
    "http://evil.test/cb", "https://app.test/callback", "http://app.test/callback?x=1", "http://app.test/callback#f",
    "//evil.test", "javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
    "<script>alert(1)</script>", "' OR 1=1 --", "{{7*7}}", "${jndi:ldap://x}",
    "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA", "a.b.c", "..", "...", "a" * 65, "a" * 513,
    "authorization_code", "refresh_token", "client_credentials", "password",
    "urn:ietf:params:oauth:grant-type:jwt-bearer", "access_token",
    "en", "nl", "de-DE fr", "xx-YY", "*",
    "urn:ietf:params:oauth:request_uri:", "urn:ietf:params:oauth:request_uri:" + "x" * 43,
    "urn:ietf:params:oauth:request_uri:\x00", "com.example.app:/cb", "http://127.0.0.1:1/callback",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
] + PLACEHOLDERS)
VALUES = st.one_of(ODD_VALUES, st.text(max_size=30), CONTROL, UNICODE, HUGE)
SMALL_VALUES = st.one_of(ODD_VALUES, st.text(max_size=30), CONTROL, UNICODE)
KEYS = st.one_of(
    st.sampled_from(PARAM_NAMES),
    st.sampled_from(PARAM_NAMES).map(lambda k: k + "[]"),
    st.sampled_from(PARAM_NAMES).map(lambda k: f"{k}[0]"),
    st.sampled_from(PARAM_NAMES).map(lambda k: f"{k}[a][b]"),
    st.sampled_from(PARAM_NAMES).map(str.upper),
    st.text(max_size=15),
    CONTROL,
)


def _pairs(values, max_size=10):
    base = st.lists(st.tuples(KEYS, values), max_size=max_size)
    return st.one_of(base, base.map(lambda p: p + p), base.map(lambda p: p + [(k, "") for k, _ in p]))


PAIRS = _pairs(VALUES)
SMALL_PAIRS = _pairs(SMALL_VALUES)

RAW_QUERY = st.lists(
    st.one_of(
        st.tuples(st.binary(max_size=12), st.binary(max_size=40)).map(
            lambda kv: quote_from_bytes(kv[0], safe=b"[]") + "=" + quote_from_bytes(kv[1])
        ),
        st.sampled_from(["=", "&", "==", "a=b=c", "%", "%zz", "%ff", "%c3%28", "client_id", "=x", "scope=%E2%82",
                         "state=%00", "a[=1", "a]=1", ";", "a;b=c"]),
    ),
    max_size=8,
).map(lambda parts: "&".join(parts).encode("ascii"))

HEADER_TEXT = st.text(max_size=60).map(lambda s: s.encode("utf-8").decode("latin-1").replace("\r", "").replace("\n", ""))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


AUTH_HEADERS = st.one_of(
    st.sampled_from([
        "", " ", "Basic", "Basic ", "Basic  ", "Bearer", "Bearer ", "basic", "BASIC Zm9vOmJhcg==", "Basic !!!!",
        "Basic ====", "Basic Zm9v", "Basic Og==", "Basic OjpfOg==", "Basic Zm9vOg", "Basic Zm9vOmJhcg", "Basic %%%",
        "Basic " + b64(b"\xff\xfe:\x00"), "Basic " + b64(b":"), "Basic " + b64(b"a" * 2000 + b":b"),
        "Bearer a b c", "DPoP", "DPoP ", "DPoP a b c", "dpop " + "a" * 5000, "Bearer " + "a" * 5000, "Digest username=\"x\", realm=\"y\"", "Negotiate YII=", "Token abc",
        "Basic Zm9vOmJhcg== extra", "Bearer\tabc", "{client_basic}", "{client_basic_wrong}", "{client_basic_nocolon}",
        # Bytes 0x85 and 0xA0 are legal obs-text in a header and reach the app as
        # latin-1 characters that str.split() treats as whitespace.
        "Basic \xa0", "\xa0 Basic", "Basic \x85", "Bearer \xa0",
    ]),
    HEADER_TEXT.map(lambda s: "Basic " + s),
    HEADER_TEXT.map(lambda s: "Bearer " + s),
    HEADER_TEXT.map(lambda s: "DPoP " + s),
    HEADER_TEXT,
    st.binary(max_size=60).map(lambda b: "Basic " + b64(b)),
    st.text(max_size=40).map(lambda s: "Basic " + b64(s.encode("utf-8"))),
    st.tuples(st.text(max_size=30), st.text(max_size=30)).map(lambda t: "Basic " + b64(f"{t[0]}:{t[1]}".encode())),
    st.text(max_size=40).map(lambda s: "Basic " + b64(s.encode("utf-8")).rstrip("=")),
)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(PARAM_NAMES) | st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)

# Content type, body
ODD_BODIES = st.one_of(
    st.tuples(st.just("application/json"), JSON_VALUES.map(lambda v: json.dumps(v).encode())),
    st.tuples(st.just("application/json"), st.binary(max_size=300)),
    st.tuples(st.just("application/json; charset=utf-8"), st.just(b'{"grant_type": "client_credentials"')),
    st.tuples(st.just("text/plain"), st.binary(max_size=300)),
    st.tuples(st.just("text/plain"), SMALL_PAIRS.map(lambda p: urlencode(p).encode())),
    st.tuples(st.just("application/octet-stream"), st.binary(max_size=300)),
    st.tuples(st.just("application/xml"), st.just(b"<?xml version='1.0'?><a>&lol;</a>")),
    st.tuples(st.just("multipart/form-data"), st.binary(max_size=300)),
    st.tuples(st.just("multipart/form-data; boundary=xyz"), st.binary(max_size=300)),
    st.tuples(st.just("multipart/form-data; boundary=xyz"), st.just(b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n")),
    st.tuples(st.just("multipart/form-data; boundary=xyz"), st.just(b"--xyz\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n")),
    st.tuples(st.just("multipart/form-data; boundary=" + "b" * 300), st.binary(max_size=100)),
    st.tuples(st.just("application/x-www-form-urlencoded"), st.binary(max_size=300)),
    st.tuples(st.just("application/x-www-form-urlencoded; charset=utf-16"), st.binary(max_size=300)),
    st.tuples(st.just("application/x-www-form-urlencoded; charset=bogus"), SMALL_PAIRS.map(lambda p: urlencode(p).encode())),
    st.tuples(st.sampled_from(["", "garbage", "\x01/\x02", "application/", "/", ";;;", "application/x-www-form-urlencoded;;"]),
              SMALL_PAIRS.map(lambda p: urlencode(p).encode())),
    st.tuples(HEADER_TEXT, st.binary(max_size=200)),
)


# -- the checks ------------------------------------------------------------------------

TRACEBACK_MARKERS = [
    b"Traceback (most recent call last)",
    b"werkzeug.debug",
    b"sqlalchemy.exc",
    b"jinja2.exceptions",
    b"Internal Server Error",
]
FILE_LINE = re.compile(rb'File "[^"]+", line \d+')


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _describe(method, path, kw) -> str:
    parts = [f"{method} {path}"]
    for key in ("query_string", "headers", "content_type", "data"):
        if kw.get(key) not in (None, {}, b""):
            parts.append(f"{key}={_short(kw[key])}")
    return " ".join(parts)


def _safe_location(location: str) -> bool:
    """Redirects stay on the provider or go to a registered URI of the client."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return not location.startswith("//") and not location.startswith("\\")
    if location.startswith(ISSUER + "/"):
        return True
    target = location.split("?", 1)[0].split("#", 1)[0]
    return target in (REDIRECT_URI, POST_LOGOUT_URI)


def check(response, what: str):
    body = response.get_data()
    assert response.status_code < 500, f"{what}\n-> {response.status_code}\n{body[:2000]!r}"
    for marker in TRACEBACK_MARKERS:
        assert marker not in body, f"{what}\n-> body contains {marker!r}: {body[:2000]!r}"
    assert not FILE_LINE.search(body), f"{what}\n-> body contains a stack frame: {body[:2000]!r}"
    location = response.headers.get("Location")
    if location is not None:
        assert _safe_location(location), f"{what}\n-> redirect to an unregistered target {location!r}"
    csp = response.headers.get("Content-Security-Policy", "")
    for origin in re.findall(r"form-action (\S+?);", csp):
        assert origin in ("'self'", "http://app.test"), f"{what}\n-> form_post to {origin!r}"
    return response


def send(http, method, path, **kw):
    """One request; an exception escaping the app is reported as the 500 it would be."""
    what = _describe(method, path, kw)
    if isinstance(kw.get("query_string"), bytes):
        kw["query_string"] = kw["query_string"].decode("latin-1")
    try:
        response = http.open(path, method=method, **kw)
    except AssertionError:
        raise
    except Exception as exc:
        frames = "".join(traceback.format_exception(exc)[-8:])
        raise AssertionError(f"{what}\n-> unhandled {type(exc).__name__} (a 500 in production):\n{frames}") from exc
    return check(response, what)


def token_error(response, sent_authorization: bool, what: str = "") -> dict:
    """RFC 6749 5.2: 400, or 401 for invalid_client; a JSON object naming the error."""
    assert response.status_code in (400, 401), f"{what}\n-> {response.status_code} {response.get_data()[:500]!r}"
    assert response.mimetype == "application/json", f"{what}\n-> {response.mimetype} {response.get_data()[:500]!r}"
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), f"{what}\n-> {body!r}"
    assert body["error"] in TOKEN_ERRORS, f"{what}\n-> {body!r}"
    if response.status_code == 401:
        assert body["error"] == "invalid_client", f"{what}\n-> 401 with {body!r}"
    if body["error"] == "invalid_client" and sent_authorization:
        assert response.status_code == 401, f"{what}\n-> invalid_client after an Authorization header must be 401"
        assert response.headers.get("WWW-Authenticate"), f"{what}\n-> 401 without WWW-Authenticate"
    return body


# -- the context a test's placeholders resolve to --------------------------------------------


def placeholders(portal=None, third_party=None, **extra) -> dict:
    verifier, challenge = pkce_pair()
    ctx = {
        "{client_id}": portal["client_id"] if portal else "no-such-client",
        "{client_secret}": portal.get("client_secret", "") if portal else "",
        "{third_client_id}": third_party["client_id"] if third_party else "no-such-client-either",
        "{redirect_uri}": REDIRECT_URI,
        "{post_logout_uri}": POST_LOGOUT_URI,
        "{challenge}": challenge,
        "{email}": "anna@example.com",
        "{password}": "correct horse battery staple",
        "{flow_id}": "no-such-flow",
        "{id_token}": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        "{random_flow}": "no-such-flow",
    }
    if portal:
        raw = f"{portal['client_id']}:{portal.get('client_secret', '')}".encode()
        ctx["{client_basic}"] = "Basic " + b64(raw)
        ctx["{client_basic_wrong}"] = "Basic " + b64(f"{portal['client_id']}:wrong".encode())
        ctx["{client_basic_nocolon}"] = "Basic " + b64(portal["client_id"].encode())
    ctx.update(extra)
    return ctx


def resolve(value: str, ctx: dict) -> str:
    return ctx.get(value, value)


def resolve_pairs(pairs, ctx: dict) -> list[tuple[str, str]]:
    return [(resolve(k, ctx), resolve(v, ctx)) for k, v in pairs]


def form_body(pairs) -> bytes:
    return urlencode(pairs).encode("ascii")


def resolve_path(path: str, flow_id: str) -> str:
    return path.replace("{random_flow}", quote(flow_id, safe="") or "x")


FLOW_IDS = st.one_of(
    st.text(min_size=1, max_size=40),
    st.uuids().map(str),
    st.sampled_from(["..", ".", "%2e%2e", "null", "0", "-1", "a" * 300, "\x00", "\u202e", "' OR 1=1 --", "%00"]),
)


# -- oversized bodies ----------------------------------------------------------------------------

OVERSIZED = [
    ("application/x-www-form-urlencoded", b"grant_type=client_credentials&scope=" + b"a" * MAX_BODY),
    ("application/json", b'{"a": "' + b"a" * MAX_BODY + b'"}'),
    ("multipart/form-data; boundary=xyz",
     b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" + b"a" * MAX_BODY + b"\r\n--xyz--\r\n"),
    ("text/plain", b"a" * (MAX_BODY + 1)),
    ("application/octet-stream", b"\x00" * (MAX_BODY + 1)),
]


NAMELESS_PART = b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n"


# -- /token ------------------------------------------------------------------------------------------------

GRANT_TYPES = st.one_of(
    st.sampled_from([
        "authorization_code", "refresh_token", "client_credentials", "password", "implicit", "token", "code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:saml2-bearer",
        "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:openid:params:grant-type:ciba", "", " ", "AUTHORIZATION_CODE", "authorization_code ", " client_credentials",
        "authorization_code\x00", "client_credentials refresh_token", "refresh_token[]", "null",
    ]),
    st.text(max_size=30),
    CONTROL,
    UNICODE,
)
TOKEN_KEYS = ["code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id", "client_secret",
              "username", "password", "assertion", "device_code", "subject_token", "audience", "resource", "nonce"]
TOKEN_PAIRS = st.lists(st.tuples(st.one_of(st.sampled_from(TOKEN_KEYS), KEYS), SMALL_VALUES), max_size=8)
AUTH_MODES = st.sampled_from(["basic", "basic-wrong", "post", "post-wrong", "none", "basic-and-post", "bogus", "no-auth",
                              "machine-basic", "machine-post", "public-none"])


def token_auth(mode, portal, machine, public_app):
    """Headers and form fields for one way of (mis)authenticating at /token."""
    def creds(c, secret=None):
        return c["client_id"], c.get("client_secret", "") if secret is None else secret

    if mode == "basic":
        return basic(portal), []
    if mode == "basic-wrong":
        return {"Authorization": "Basic " + b64(f"{portal['client_id']}:nope".encode())}, []
    if mode == "post":
        cid, secret = creds(portal)
        return {}, [("client_id", cid), ("client_secret", secret)]
    if mode == "post-wrong":
        return {}, [("client_id", portal["client_id"]), ("client_secret", "nope")]
    if mode == "none":
        return {}, [("client_id", portal["client_id"])]
    if mode == "basic-and-post":
        cid, secret = creds(portal)
        return basic(portal), [("client_id", cid), ("client_secret", secret)]
    if mode == "bogus":
        return {"Authorization": "Basic !!!"}, []
    if mode == "machine-basic":
        return basic(machine), []
    if mode == "machine-post":
        cid, secret = creds(machine)
        return {}, [("client_id", cid), ("client_secret", secret)]
    if mode == "public-none":
        return {}, [("client_id", public_app["client_id"])]
    return {}, []


# -- /authorize ------------------------------------------------------------------------------------------

UNKNOWN_CLIENT_IDS = st.one_of(
    st.text(max_size=70),
    st.uuids().map(str),
    CONTROL,
    UNICODE,
    st.sampled_from(["", " ", "null", "a" * 64, "a" * 65, "a" * 5000, "%00", "' OR 1=1 --"]),
)


ODD_URI_CHARS = ["\xe9", '"', "\\", "\x1f", "\n", "\x00", "\u202e"]


STATES = st.text(min_size=1, max_size=80).filter(lambda s: s.strip() == s and s != "")


def browser_at(app, portal, third_party, person, stage) -> Browser:
    """A browser with a login flow waiting at ``stage``."""
    email, password = person["email"], person["password"]
    b = Browser(app)
    if stage == "totp":
        first = Browser(app)
        first.authorize(portal["client_id"])
        first.sign_in(email, password, first_time=True)
        b.authorize(portal["client_id"])
        b.submit(email=email)
        b.submit(password=password)
    elif stage == "consent":
        b.authorize(third_party["client_id"])
        b.sign_in(email, password, first_time=True)
    else:
        b.authorize(portal["client_id"])
        moves = [("email", {"email": email}), ("password", {"password": password}), ("verify_email", {"email": email})]
        for state, fields in moves:
            if b.step_state == stage:
                break
            b.submit(**fields)
        if stage == "totp_enroll":
            b.submit(email_code=code_from_mail(app, email))
    assert b.step_state == stage, (stage, b.status, b.alert)
    return b


ACTIONS = st.one_of(
    st.none(),
    st.sampled_from(["", "restart", "resend", "RESTART", "advance", "step_email", "move_to", "check_live", "__class__",
                     "__init__", "update_data", "restart ", "resend\x00", "passkey", "passkey_enrol", "spend_challenge"]),
    st.text(max_size=20),
)
SUBMITTED_STATES = st.one_of(st.none(), st.just("{current}"), st.sampled_from(LOGIN_STATES), st.text(max_size=20), CONTROL)
# What a passkey form posts as ``credential``: shapes of a WebAuthn answer, broken in many ways.
CREDENTIALS = st.sampled_from([
    "{}", "[]", "null", '"x"', '{"id": 1}', '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}',
    '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {"clientDataJSON": "e30", '
    '"authenticatorData": "AAAA", "signature": "AA", "userHandle": "***"}}',
    '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {"clientDataJSON": "e30", '
    '"attestationObject": "oA", "transports": ["warp"]}}',
])
STEP_FIELDS = st.lists(
    st.one_of(
        st.tuples(
            st.one_of(st.sampled_from(["email", "password", "email_code", "totp_code", "decision", "state", "action",
                                       "csrf_token", "_flow", "credential", "name"]), KEYS),
            SMALL_VALUES,
        ),
        st.tuples(st.just("credential"), CREDENTIALS),
    ),
    max_size=6,
)


SIGNED_IN_KEYS = ["prompt", "max_age", "id_token_hint", "login_hint", "ui_locales", "response_mode", "nonce", "scope",
                  "_flow", "redirect_uri", "state", "claims", "request", "response_type", "code_challenge_method", "lang"]
