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
"""

from __future__ import annotations

import base64
import io
import json
import re
import traceback
from urllib.parse import parse_qs, quote, quote_from_bytes, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.helpers import (
    ISSUER,
    POST_LOGOUT_URI,
    REDIRECT_URI,
    Browser,
    basic,
    code_from_mail,
    exchange_code,
    make_client,
    pkce_pair,
    token_request,
)

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
]
POST_PATHS = ["/authorize", "/token", "/userinfo", "/introspect", "/revoke", "/logout", "/login/{random_flow}"]
GET_ONLY_PATHS = ["/.well-known/openid-configuration", "/jwks.json", "/account", "/signin", "/", "/dev/mailbox"]
ALL_PATHS = sorted(set(GET_PATHS) | set(POST_PATHS))

LOGIN_STATES = ["email", "password", "verify_email", "email_code", "totp_enroll", "totp", "resume", "consent", "done"]
TOKEN_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}

PARAM_NAMES = [
    "response_type", "client_id", "client_secret", "redirect_uri", "scope", "state", "nonce",
    "code_challenge", "code_challenge_method", "response_mode", "prompt", "max_age", "login_hint",
    "id_token_hint", "ui_locales", "claims", "request", "request_uri", "display", "acr_values",
    "grant_type", "code", "code_verifier", "refresh_token", "token", "token_type_hint", "access_token",
    "post_logout_redirect_uri", "confirm", "csrf_token", "lang", "_flow", "email", "password",
    "email_code", "totp_code", "decision", "action", "client_assertion", "client_assertion_type",
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


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


AUTH_HEADERS = st.one_of(
    st.sampled_from([
        "", " ", "Basic", "Basic ", "Basic  ", "Bearer", "Bearer ", "basic", "BASIC Zm9vOmJhcg==", "Basic !!!!",
        "Basic ====", "Basic Zm9v", "Basic Og==", "Basic OjpfOg==", "Basic Zm9vOg", "Basic Zm9vOmJhcg", "Basic %%%",
        "Basic " + _b64(b"\xff\xfe:\x00"), "Basic " + _b64(b":"), "Basic " + _b64(b"a" * 2000 + b":b"),
        "Bearer a b c", "Bearer " + "a" * 5000, "Digest username=\"x\", realm=\"y\"", "Negotiate YII=", "Token abc",
        "Basic Zm9vOmJhcg== extra", "Bearer\tabc", "{client_basic}", "{client_basic_wrong}", "{client_basic_nocolon}",
        # Bytes 0x85 and 0xA0 are legal obs-text in a header and reach the app as
        # latin-1 characters that str.split() treats as whitespace.
        "Basic \xa0", "\xa0 Basic", "Basic \x85", "Bearer \xa0",
    ]),
    HEADER_TEXT.map(lambda s: "Basic " + s),
    HEADER_TEXT.map(lambda s: "Bearer " + s),
    HEADER_TEXT,
    st.binary(max_size=60).map(lambda b: "Basic " + _b64(b)),
    st.text(max_size=40).map(lambda s: "Basic " + _b64(s.encode("utf-8"))),
    st.tuples(st.text(max_size=30), st.text(max_size=30)).map(lambda t: "Basic " + _b64(f"{t[0]}:{t[1]}".encode())),
    st.text(max_size=40).map(lambda s: "Basic " + _b64(s.encode("utf-8")).rstrip("=")),
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


def _context(portal=None, third_party=None, **extra) -> dict:
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
        ctx["{client_basic}"] = "Basic " + _b64(raw)
        ctx["{client_basic_wrong}"] = "Basic " + _b64(f"{portal['client_id']}:wrong".encode())
        ctx["{client_basic_nocolon}"] = "Basic " + _b64(portal["client_id"].encode())
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


# -- query strings and form bodies ----------------------------------------------------------


@FAST
@example(path="/authorize", pairs=[("response_type", "\x1f")], flow_id="x")
@given(path=st.sampled_from(GET_PATHS), pairs=PAIRS, flow_id=FLOW_IDS)
def test_get_endpoints_take_any_query_parameters(client, portal, path, pairs, flow_id):
    ctx = _context(portal)
    send(client, "GET", resolve_path(path, flow_id), query_string=form_body(resolve_pairs(pairs, ctx)))


@FAST
@given(path=st.sampled_from(GET_PATHS), raw=RAW_QUERY)
def test_get_endpoints_take_undecodable_query_strings(client, portal, path, raw):
    send(client, "GET", resolve_path(path, "x"), query_string=raw)


@MORE
@example(path="/authorize", pairs=[("response_type", "\x1f")], query=[], flow_id="x")
@given(path=st.sampled_from(POST_PATHS), pairs=PAIRS, query=SMALL_PAIRS, flow_id=FLOW_IDS)
def test_post_endpoints_take_any_form_body(client, portal, path, pairs, query, flow_id):
    ctx = _context(portal)
    body = form_body(resolve_pairs(pairs, ctx))
    response = send(
        client, "POST", resolve_path(path, flow_id),
        query_string=form_body(resolve_pairs(query, ctx)),
        data=body, content_type="application/x-www-form-urlencoded",
    )
    if len(body) > MAX_BODY and path != "/userinfo":  # /userinfo: see test_oversized_bodies_answer_413
        assert response.status_code == 413, (path, len(body), response.status_code)


@FAST
@given(path=st.sampled_from(POST_PATHS), content=ODD_BODIES)
def test_post_endpoints_take_wrong_content_types(client, portal, path, content):
    content_type, body = content
    headers = {"Content-Type": content_type} if content_type else {}
    response = send(client, "POST", resolve_path(path, "x"), data=body, headers=headers)
    if path == "/token":
        token_error(response, False, f"POST /token {content_type!r} {body[:200]!r}")


@FEWER
@example(path="/login/{random_flow}", pairs=[("\n", "")], file_field="response_type", file_body=b"")
@given(path=st.sampled_from(POST_PATHS), pairs=SMALL_PAIRS, file_field=st.sampled_from(PARAM_NAMES), file_body=st.binary(max_size=200))
def test_post_endpoints_take_multipart_bodies(client, portal, path, pairs, file_field, file_body):
    ctx = _context(portal)
    data = {}
    for key, value in resolve_pairs(pairs, ctx):
        data.setdefault(key, []).append(value)
    data[file_field] = (io.BytesIO(file_body), "x.bin")
    response = send(client, "POST", resolve_path(path, "x"), data=data, content_type="multipart/form-data")
    if path == "/token":
        token_error(response, False, f"multipart POST /token {data!r}")


@pytest.mark.parametrize("path", POST_PATHS)
def test_many_fields_are_refused_or_ignored(client, portal, path):
    pairs = [(f"k{i}[]", str(i)) for i in range(3000)] + [("grant_type", "client_credentials")]
    body = form_body(pairs)
    assert len(body) < MAX_BODY
    send(client, "POST", resolve_path(path, "x"), data=body, content_type="application/x-www-form-urlencoded")
    data = {f"k{i}": "v" for i in range(1500)}
    send(client, "POST", resolve_path(path, "x"), data=data, content_type="multipart/form-data")


# -- oversized bodies ----------------------------------------------------------------------------

OVERSIZED = [
    ("application/x-www-form-urlencoded", b"grant_type=client_credentials&scope=" + b"a" * MAX_BODY),
    ("application/json", b'{"a": "' + b"a" * MAX_BODY + b'"}'),
    ("multipart/form-data; boundary=xyz",
     b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" + b"a" * MAX_BODY + b"\r\n--xyz--\r\n"),
    ("text/plain", b"a" * (MAX_BODY + 1)),
    ("application/octet-stream", b"\x00" * (MAX_BODY + 1)),
]


@pytest.mark.parametrize("content_type,body", OVERSIZED, ids=[c.split(";")[0] for c, _ in OVERSIZED])
@pytest.mark.parametrize("path", POST_PATHS)
def test_oversized_bodies_answer_413(client, path, content_type, body):
    assert len(body) > MAX_BODY
    response = send(client, "POST", resolve_path(path, "x"), data=body, content_type=content_type)
    assert response.status_code == 413, (path, content_type, response.status_code, response.get_data()[:300])


@pytest.mark.parametrize("path", ["/login/{flow}", "/authorize", "/logout"])
def test_oversized_body_on_a_live_login_flow_answers_413(browser, portal, path):
    browser.authorize(portal["client_id"])
    assert browser.step_state == "email"
    flow_path = urlsplit(browser.page.forms["step"]["action"]).path
    csrf = browser.page.forms["step"]["fields"]["csrf_token"]
    target = flow_path if path.startswith("/login/") else path
    body = form_body([("csrf_token", csrf), ("state", "email"), ("email", "a" * MAX_BODY)])
    response = send(browser.http, "POST", target, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413, (target, response.status_code)


@pytest.mark.parametrize("path", POST_PATHS)
def test_oversized_chunked_body_without_length_answers_413(client, path):
    """A chunked body has no Content-Length. gunicorn (``idp serve``) marks its input
    as terminated, so the limit has to hold while reading, not be cut off silently."""
    body = b"grant_type=client_credentials&scope=" + b"a" * (2 * MAX_BODY)
    builder = EnvironBuilder(path=resolve_path(path, "x"), method="POST", data=body,
                             content_type="application/x-www-form-urlencoded")
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input_terminated"] = True
    try:
        response = client.open(Request(environ))
    except Exception as exc:
        raise AssertionError(f"chunked POST {path} -> unhandled {exc!r}") from exc
    check(response, f"chunked POST {path}")
    assert response.status_code == 413, (path, response.status_code)


def test_body_at_the_limit_is_read(client, portal):
    prefix = b"grant_type=authorization_code&code=x&scope="
    body = prefix + b"a" * (MAX_BODY - len(prefix))
    assert len(body) == MAX_BODY
    response = send(client, "POST", "/token", data=body, content_type="application/x-www-form-urlencoded",
                    headers=basic(portal))
    token_error(response, True, "POST /token at exactly 64 KiB")


@pytest.mark.parametrize("header", ["Basic \xa0", "\xa0 Basic", "Basic \x85", "Bearer \xa0"])
@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
def test_blank_basic_credentials_are_an_invalid_client(client, path, header):
    data = {"grant_type": "client_credentials", "token": "x"}
    response = send(client, "POST", path, data=data, headers={"Authorization": header})
    token_error(response, True, f"POST {path} Authorization={header!r}")


NAMELESS_PART = b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n"


def test_multipart_part_without_a_name_on_a_login_page(browser, portal):
    send(browser.http, "POST", "/login/no-such-flow", data=NAMELESS_PART, content_type="multipart/form-data; boundary=xyz")
    browser.authorize(portal["client_id"])
    flow_path = urlsplit(browser.page.forms["step"]["action"]).path
    response = send(browser.http, "POST", flow_path, data=NAMELESS_PART, content_type="multipart/form-data; boundary=xyz")
    assert response.status_code == 400


# -- methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "BREW"])
@pytest.mark.parametrize("path", ALL_PATHS)
def test_odd_methods_answer_405(client, path, method):
    response = send(client, method, resolve_path(path, "x"), data=b"a=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 405, (method, path, response.status_code)


@pytest.mark.parametrize("path", ALL_PATHS)
def test_405_names_the_allowed_methods(client, path):
    """RFC 9110 15.5.6: a 405 response must carry an Allow header."""
    response = send(client, "PUT", resolve_path(path, "x"))
    assert response.status_code == 405
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
    assert allow, f"PUT {path} -> 405 without an Allow header"
    assert "PUT" not in allow and ("GET" in allow or "POST" in allow), allow


@pytest.mark.parametrize("path", GET_ONLY_PATHS)
def test_post_to_get_only_endpoints_answers_405(client, path):
    response = send(client, "POST", path, data={"a": "b"})
    assert response.status_code == 405, (path, response.status_code)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ALL_PATHS)
def test_head_and_options_do_not_fail(client, path, method):
    send(client, method, resolve_path(path, "x"))


@FEWER
@given(segments=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_random_paths_do_not_fail(client, segments):
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    response = send(client, "GET", path)
    assert response.status_code in (200, 302, 308) or 400 <= response.status_code < 500, (path, response.status_code)


# -- Authorization headers ---------------------------------------------------------------------------


@MORE
@example(path="/introspect", method="POST", header="Basic \xa0", pairs=[])
@example(path="/token", method="POST", header="\xa0 Basic", pairs=[("grant_type", "client_credentials")])
@given(path=st.sampled_from(POST_PATHS + ["/userinfo", "/authorize", "/logout"]), method=st.sampled_from(["GET", "POST"]),
       header=AUTH_HEADERS, pairs=SMALL_PAIRS)
def test_bogus_authorization_headers(client, portal, path, method, header, pairs):
    ctx = _context(portal)
    header = resolve(header, ctx)
    if method == "GET" and path not in GET_PATHS:
        method = "POST"
    body = form_body(resolve_pairs(pairs, ctx))
    kw = {"headers": {"Authorization": header}}
    if method == "POST":
        kw.update(data=body, content_type="application/x-www-form-urlencoded")
    else:
        kw.update(query_string=body)
    response = send(client, method, resolve_path(path, "x"), **kw)
    if path == "/token":
        token_error(response, True, f"POST /token Authorization={header!r} body={body[:300]!r}")
    if path == "/userinfo" and header != ctx.get("{client_basic}"):
        assert response.status_code in (400, 401), (header, response.status_code, response.get_data()[:300])
    if path in ("/introspect", "/revoke") and response.status_code >= 400:
        assert response.mimetype == "application/json" and "error" in response.get_json(), response.get_data()[:300]


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


@pytest.fixture
def machine(app):
    return make_client(app, name="Nightly import", first_party=True, grant_types=("client_credentials",))


@pytest.fixture
def public_app(app):
    return make_client(app, name="Desktop app", first_party=True, public=True)


def _token_auth(mode, portal, machine, public_app):
    """Headers and form fields for one way of (mis)authenticating at /token."""
    def creds(c, secret=None):
        return c["client_id"], c.get("client_secret", "") if secret is None else secret

    if mode == "basic":
        return basic(portal), []
    if mode == "basic-wrong":
        return {"Authorization": "Basic " + _b64(f"{portal['client_id']}:nope".encode())}, []
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


@MORE
@given(grant_type=GRANT_TYPES, pairs=TOKEN_PAIRS, mode=AUTH_MODES, grant_twice=st.booleans(), grant_first=st.booleans())
def test_token_requests_with_any_grant_type(client, portal, machine, public_app, grant_type, pairs, mode, grant_twice, grant_first):
    ctx = _context(portal)
    headers, auth_fields = _token_auth(mode, portal, machine, public_app)
    fields = resolve_pairs(pairs, ctx)
    grant = [("grant_type", grant_type)] * (2 if grant_twice else 1)
    body_pairs = (grant + auth_fields + fields) if grant_first else (auth_fields + fields + grant)
    body = form_body(body_pairs)
    what = f"POST /token headers={headers!r} body={body[:500]!r}"
    response = send(client, "POST", "/token", data=body, content_type="application/x-www-form-urlencoded", headers=headers)
    if len(body) > MAX_BODY:
        assert response.status_code == 413, what
        return
    if response.status_code == 200:
        effective = parse_qs(body.decode(), keep_blank_values=True)
        assert mode.startswith("machine") and effective["grant_type"] == ["client_credentials"], what
        assert response.get_json()["token_type"] == "Bearer"
        assert response.headers["Cache-Control"] == "no-store"
        return
    token_error(response, "Authorization" in headers, what)


@pytest.mark.parametrize("grant_type", ["authorization_code", "refresh_token", "client_credentials", "password", "implicit", ""])
@pytest.mark.parametrize("content_type,body", [
    ("application/json", b'{"grant_type": "%s", "code": "x"}'),
    ("text/plain", b"grant_type=%s&code=x"),
    ("multipart/form-data; boundary=nope", b"grant_type=%s"),
    ("application/x-www-form-urlencoded", b"\xff\xfe%s\x00"),
], ids=["json", "text", "bad-multipart", "binary"])
def test_token_with_wrong_content_type_is_a_json_error(client, portal, grant_type, content_type, body):
    body = body.replace(b"%s", grant_type.encode())
    response = send(client, "POST", "/token", data=body, content_type=content_type, headers=basic(portal))
    token_error(response, True, f"POST /token {content_type} {body!r}")


def test_token_errors_with_the_right_status(client, portal):
    cases = [
        ({}, [("grant_type", "authorization_code"), ("code", "x"), ("code_verifier", "y")], 401),  # no client auth
        (basic(portal), [], 400),
        (basic(portal), [("grant_type", "nonsense")], 400),
        (basic(portal), [("grant_type", "authorization_code")], 400),
        (basic(portal), [("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", REDIRECT_URI),
                         ("code_verifier", "v" * 50)], 400),
        (basic(portal), [("grant_type", "refresh_token"), ("refresh_token", "nope")], 400),
        (basic(portal), [("grant_type", "client_credentials")], 400),
        ({"Authorization": "Basic " + _b64(b"nobody:nothing")}, [("grant_type", "client_credentials")], 401),
    ]
    for headers, pairs, status in cases:
        response = send(client, "POST", "/token", data=form_body(pairs), content_type="application/x-www-form-urlencoded",
                        headers=headers)
        token_error(response, bool(headers), f"{headers} {pairs}")
        assert response.status_code == status, (headers, pairs, response.status_code, response.get_json())


# -- /authorize ------------------------------------------------------------------------------------------

UNKNOWN_CLIENT_IDS = st.one_of(
    st.text(max_size=70),
    st.uuids().map(str),
    CONTROL,
    UNICODE,
    st.sampled_from(["", " ", "null", "a" * 64, "a" * 65, "a" * 5000, "%00", "' OR 1=1 --"]),
)


@MORE
@given(client_id=UNKNOWN_CLIENT_IDS, pairs=SMALL_PAIRS, method=st.sampled_from(["GET", "POST"]),
       redirect_uri=st.sampled_from([REDIRECT_URI, "http://evil.test/cb", "javascript:alert(1)", "", None]))
def test_authorize_with_an_unknown_client_shows_an_error_page(client, portal, third_party, client_id, pairs, method, redirect_uri):
    assume(client_id not in (portal["client_id"], third_party["client_id"]))
    ctx = _context(None)
    extra = [(k, v) for k, v in resolve_pairs(pairs, ctx) if k != "client_id"]
    params = [("client_id", client_id), ("response_type", "code"), ("scope", "openid")]
    if redirect_uri is not None:
        params.append(("redirect_uri", redirect_uri))
    body = form_body(params + extra)
    if method == "GET":
        response = send(client, "GET", "/authorize", query_string=body)
    else:
        response = send(client, "POST", "/authorize", data=body, content_type="application/x-www-form-urlencoded")
    what = f"{method} /authorize {body[:400]!r}"
    if method == "POST" and len(body) > MAX_BODY:
        assert response.status_code == 413, what
        return
    assert 400 <= response.status_code < 500, (what, response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers, what
    assert response.mimetype == "text/html", what
    assert b"<form" not in response.get_data() or b"form_post" not in response.get_data()


ODD_URI_CHARS = ["\xe9", '"', "\\", "\x1f", "\n", "\x00", "\u202e"]


@pytest.mark.parametrize("char", ODD_URI_CHARS)
def test_authorize_odd_response_type_is_answered_not_raised(client, portal, char):
    """The response_type is echoed into an error description; characters outside the
    RFC 6749 error_description set must not turn the error into an exception."""
    response = send(client, "GET", "/authorize", query_string=urlencode({"response_type": "code" + char, "client_id": "nope"}))
    assert response.status_code == 400 and "Location" not in response.headers
    response = send(client, "GET", "/authorize", query_string=urlencode(
        {"response_type": "code" + char, "client_id": portal["client_id"], "state": "s1"}))
    assert response.status_code == 302, response.status_code
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["unsupported_response_type"] and query["state"] == ["s1"], query


@pytest.mark.parametrize("char", ODD_URI_CHARS)
def test_authorize_odd_unregistered_redirect_uri_shows_an_error_page(client, portal, char):
    for redirect_uri in (f"http://evil.test/{char}", REDIRECT_URI + char):
        params = {"response_type": "code", "client_id": portal["client_id"], "redirect_uri": redirect_uri, "scope": "openid"}
        response = send(client, "GET", "/authorize", query_string=urlencode(params))
        assert response.status_code == 400 and "Location" not in response.headers, (redirect_uri, response.status_code)


STATES = st.text(min_size=1, max_size=80).filter(lambda s: s.strip() == s and s != "")


@FAST
@given(state=STATES, method=st.sampled_from(["GET", "POST"]), which=st.sampled_from(["portal", "third_party"]),
       variant=st.sampled_from(["missing", "empty", "plain", "missing-with-method"]),
       scope=st.sampled_from(["openid", "openid profile email", "openid offline_access"]),
       with_redirect=st.booleans())
def test_authorize_without_pkce_returns_invalid_request_to_the_client(client, portal, third_party, state, method, which, variant,
                                                                       scope, with_redirect):
    registered = portal if which == "portal" else third_party
    params = {"response_type": "code", "client_id": registered["client_id"], "scope": scope, "state": state, "nonce": "n-1"}
    if with_redirect:
        params["redirect_uri"] = REDIRECT_URI
    if variant == "empty":
        params["code_challenge"] = ""
    elif variant == "plain":
        params["code_challenge"] = "a" * 43
        params["code_challenge_method"] = "plain"
    elif variant == "missing-with-method":
        params["code_challenge_method"] = "S256"
    body = form_body(list(params.items()))
    if method == "GET":
        response = send(client, "GET", "/authorize", query_string=body)
    else:
        response = send(client, "POST", "/authorize", data=body, content_type="application/x-www-form-urlencoded")
    what = f"{method} /authorize {params!r}"
    assert response.status_code in (302, 303), (what, response.status_code, response.get_data()[:500])
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), (what, location)
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert query.get("error") == ["invalid_request"], (what, query)
    assert query.get("state") == [state], (what, query)
    assert query.get("iss") == [ISSUER], (what, query)
    assert "code" not in query, (what, query)


# -- login flows -------------------------------------------------------------------------------------------


@FAST
@given(flow_id=FLOW_IDS, method=st.sampled_from(["GET", "POST"]), pairs=SMALL_PAIRS, with_csrf=st.booleans())
def test_login_pages_with_random_flow_ids(browser, portal, flow_id, method, pairs, with_csrf):
    if browser.page is None:
        browser.authorize(portal["client_id"])
    csrf = browser.page.forms["step"]["fields"]["csrf_token"]
    path = "/login/" + (quote(flow_id, safe="") or "x")
    if method == "GET":
        response = send(browser.http, "GET", path, query_string=form_body(pairs))
        assert response.status_code == 404, (path, response.status_code)
    else:
        fields = ([("csrf_token", csrf)] if with_csrf else []) + list(pairs)
        response = send(browser.http, "POST", path, data=form_body(fields), content_type="application/x-www-form-urlencoded")
        assert response.status_code in (400, 404, 413), (path, response.status_code)


def _browser_at(app, portal, third_party, person, stage) -> Browser:
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
                     "__init__", "update_data", "restart ", "resend\x00"]),
    st.text(max_size=20),
)
SUBMITTED_STATES = st.one_of(st.none(), st.just("{current}"), st.sampled_from(LOGIN_STATES), st.text(max_size=20), CONTROL)
STEP_FIELDS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["email", "password", "email_code", "totp_code", "decision", "state", "action",
                                   "csrf_token", "_flow"]), KEYS),
        SMALL_VALUES,
    ),
    max_size=6,
)


@pytest.mark.parametrize("stage", ["email", "password", "verify_email", "email_code", "totp_enroll", "totp", "consent"])
@FEWER
@given(submitted=SUBMITTED_STATES, action=ACTIONS, fields=STEP_FIELDS, csrf=st.sampled_from(["real", "real", "real", "missing", "bogus"]),
       ours_first=st.booleans())
def test_login_steps_take_random_state_action_and_fields(app, portal, third_party, person, stage, submitted, action, fields,
                                                        csrf, ours_first):
    key = f"_browser_{stage}"
    b = app.extensions.get(key)
    if b is None:
        b = app.extensions[key] = _browser_at(app, portal, third_party, person, stage)
        b.flow_action = b.page.forms["step"]["action"]
        b.csrf = b.page.forms["step"]["fields"]["csrf_token"]
    ctx = _context(portal, third_party, **{"{current}": stage})
    ours = []
    if csrf == "real":
        ours.append(("csrf_token", b.csrf))
    elif csrf == "bogus":
        ours.append(("csrf_token", "IjAwMCI.bogus"))
    if submitted is not None:
        ours.append(("state", resolve(submitted, ctx)))
    if action is not None:
        ours.append(("action", action))
    random_fields = resolve_pairs(fields, ctx)
    body = form_body(ours + random_fields if ours_first else random_fields + ours)
    response = send(b.http, "POST", b.flow_action, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 302, 303, 400, 401, 403, 404, 409, 410, 413, 423, 429), response.status_code
    send(b.http, "GET", b.flow_action)


# -- signed in: the paths that only run with an SSO session ---------------------------------------------------


@pytest.fixture
def signed_in(app, portal, person):
    b = Browser(app)
    b.authorize(portal["client_id"])
    b.sign_in(person["email"], person["password"], first_time=True)
    params = b.callback_params()
    tokens = exchange_code(b.http, portal, params["code"], b.verifier).get_json()
    b.id_token = tokens["id_token"]
    b.access_token = tokens["access_token"]
    return b


SIGNED_IN_KEYS = ["prompt", "max_age", "id_token_hint", "login_hint", "ui_locales", "response_mode", "nonce", "scope",
                  "_flow", "redirect_uri", "state", "claims", "request", "response_type", "code_challenge_method", "lang"]


@MORE
@given(path=st.sampled_from(["/authorize", "/authorize", "/authorize", "/logout", "/account", "/", "/userinfo"]),
       method=st.sampled_from(["GET", "POST"]),
       pairs=st.lists(st.tuples(st.one_of(st.sampled_from(SIGNED_IN_KEYS), KEYS), SMALL_VALUES), max_size=6))
def test_signed_in_endpoints_take_malformed_parameters(app, portal, third_party, signed_in, path, method, pairs):
    b = signed_in
    ctx = _context(portal, third_party, **{"{id_token}": b.id_token})
    _, challenge = pkce_pair()
    base = {"response_type": "code", "client_id": portal["client_id"], "redirect_uri": REDIRECT_URI, "scope": "openid",
            "code_challenge": challenge, "code_challenge_method": "S256"} if path == "/authorize" else {}
    extra = resolve_pairs(pairs, ctx)
    replaced = {k for k, _ in extra}
    params = [(k, v) for k, v in base.items() if k not in replaced] + extra
    body = form_body(params)
    if method == "GET" or path in ("/account", "/"):
        response = send(b.http, "GET", path, query_string=body)
    else:
        response = send(b.http, "POST", path, data=body, content_type="application/x-www-form-urlencoded")
    if path == "/authorize" and response.status_code in (302, 303):
        location = response.headers["Location"]
        if location.startswith(REDIRECT_URI):
            query = parse_qs(urlsplit(location).query)
            assert ("code" in query) != ("error" in query), (params, location)
            assert query.get("iss") == [ISSUER], (params, location)


@FAST
@given(header=AUTH_HEADERS, method=st.sampled_from(["GET", "POST"]), content=ODD_BODIES)
def test_userinfo_with_malformed_requests_around_a_valid_token(signed_in, header, method, content):
    b = signed_in
    content_type, body = content
    good = {"Authorization": "Bearer " + b.access_token, "Content-Type": content_type}
    bad = {"Authorization": resolve(header, {}), "Content-Type": content_type}
    for headers in (good, bad):
        kw = {"headers": headers, "data": body} if method == "POST" else {"headers": {"Authorization": headers["Authorization"]}}
        response = send(b.http, method, "/userinfo", **kw)
        if headers is good:
            assert response.status_code == 200, (method, content_type, body[:200], response.status_code)
            assert response.get_json()["sub"], response.get_data()[:300]
        elif headers["Authorization"] != good["Authorization"]:
            assert response.status_code in (400, 401), (headers, response.status_code)


def test_userinfo_with_a_client_credentials_token_is_refused(client, machine):
    for scope in ("openid", "openid profile email", ""):
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        response = token_request(client, machine, data)
        assert response.status_code == 200, response.get_json()
        token = response.get_json()["access_token"]
        for method in ("GET", "POST"):
            response = send(client, method, "/userinfo", headers={"Authorization": "Bearer " + token})
            assert response.status_code in (401, 403), (scope, method, response.status_code, response.get_data()[:300])


# -- introspection and revocation with a valid client --------------------------------------------------------


@FAST
@given(path=st.sampled_from(["/introspect", "/revoke"]), pairs=SMALL_PAIRS, auth=st.sampled_from(["basic", "post", "none"]))
def test_introspect_and_revoke_with_malformed_tokens(client, portal, machine, path, pairs, auth):
    ctx = _context(portal)
    headers, auth_fields = _token_auth(auth, portal, machine, None)
    body = form_body(auth_fields + resolve_pairs(pairs, ctx))
    response = send(client, "POST", path, data=body, content_type="application/x-www-form-urlencoded", headers=headers)
    assert response.status_code in (200, 400, 401, 413), (path, body[:300], response.status_code)
    if response.status_code in (400, 401):
        assert response.mimetype == "application/json", response.get_data()[:300]
        assert isinstance(response.get_json().get("error"), str)
    if path == "/introspect" and response.status_code == 200:
        assert response.get_json() == {"active": False}, (body[:300], response.get_json())


@pytest.mark.parametrize("path,method", [("/authorize?client_id=%00&response_type=code", "GET"),
                                          ("/token", "POST")])
def test_nul_bytes_get_a_clean_answer(client, portal, path, method):
    """PostgreSQL cannot compare with a NUL character; SQLite can: either way, no 500."""
    data = {"grant_type": "client_credentials", "client_id": "\x00", "client_secret": "x"} if method == "POST" else None
    response = client.open(path, method=method, data=data)
    assert 400 <= response.status_code < 500
    if method == "POST":
        assert response.get_json()["error"] in ("invalid_request", "invalid_client")
