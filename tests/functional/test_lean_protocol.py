"""The lean protocol path (web/lean.py) answers exactly as the Flask route does.

Every request here is sent twice, once with IDP_LEAN_PROTOCOL on and once with it off, each
time against its own copy of whatever it spends (a refresh token, a throttle's counters), and
the two answers must agree: status, JSON body (token values and ids aside), headers (the
request id and length aside), the request log's client and endpoint, and the tokens-issued
metric. Where the request is one the lean path takes, the check also asserts that it was
answered without Flask's dispatch; the rest must go the route."""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import re
import secrets
from urllib.parse import quote

import pytest
from flask import request_started
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits.errors import StorageError
from sqlalchemy import insert
from werkzeug.datastructures import ImmutableMultiDict
from sqlalchemy.exc import DataError, OperationalError

from idp import clock
from idp.errors import DomainError
from idp.extensions import db, limiter
from idp.models import Account, Grant, Token
from idp.models.base import new_id
from idp.telemetry.requests import CLIENT_ID_KEY, ENDPOINT_KEY
from idp.services.crypto import token_hash
from idp.telemetry import metrics

from ..helpers import REDIRECT_URI, T0, basic, make_client

FORM = "application/x-www-form-urlencoded"
NONCE = re.compile(r"nonce(-|=\")[A-Za-z0-9_-]+")  # a page's script nonce, new on every page
TOKEN_VALUES = {"access_token", "refresh_token", "id_token"}
UNCOMPARED_HEADERS = {"x-request-id", "content-length"}
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _frozen():
    clock.freeze(T0)
    yield
    clock.freeze(None)


@pytest.fixture
def machine(app):
    return make_client(app, name="Nightly import", grant_types=("client_credentials",),
                       extra=("--token-endpoint-auth-method", "client_secret_basic"))


@pytest.fixture
def poster(app):
    return make_client(app, name="Payroll sync", grant_types=("client_credentials", "refresh_token"),
                       extra=("--token-endpoint-auth-method", "client_secret_post"))


@pytest.fixture
def api(app):
    return make_client(app, name="Ledger API", first_party=False, grant_types=(), extra=("--resource-server",))


@pytest.fixture
def account_id(app):
    with app.app_context():
        account = Account(email=f"lean-{secrets.token_hex(4)}@example.com", name="Lean", email_verified=True)
        db.session.add(account)
        db.session.commit()
        return account.id


@pytest.fixture
def mint(app, portal, account_id):
    """A fresh token family of ``portal`` (or ``client``): its (refresh token, access token)."""

    def mint(client=None, scope="openid offline_access", **columns):
        client_id = (client or portal)["client_id"]
        rt, at = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = clock.now()
        with app.app_context():
            grant_id = new_id()
            db.session.execute(insert(Grant), [{"id": grant_id, "client_id": client_id, "account_id": account_id,
                                                 "created_at": now, "amr": ["pwd"]}])
            row = {"client_id": client_id, "account_id": account_id, "grant_id": grant_id,
                   "access_token_hash": token_hash(at), "refresh_token_hash": token_hash(rt), "scope": scope,
                   "issued_at": now, "expires_in": 600, "refresh_expires_at": now + dt.timedelta(days=30),
                   "auth_time": clock.to_timestamp(now)}
            db.session.execute(insert(Token), [{**row, **columns}])
            db.session.commit()
        return rt, at

    return mint


def _unminted(value, minted: dict):
    """``value`` with each value minted for the request (also inside it: a token with more appended)
    replaced by what it stands for, so that the two paths' answers compare."""
    if not isinstance(value, str):
        return value
    for real, name in minted.items():
        value = value.replace(real, name)
    return value


class Recorder:
    """WSGI middleware outside the app: what the request observer logs of each request."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.noted = None

    def __call__(self, environ, start_response):
        self.noted = None
        body = self.wsgi_app(environ, start_response)
        try:
            yield from body
        finally:
            if hasattr(body, "close"):
                body.close()
            self.noted = (environ.get(ENDPOINT_KEY), environ.get(CLIENT_ID_KEY))


@pytest.fixture
def send(app, client):
    """``send(make)``: the answer to the request ``make()`` builds (kwargs for the test client's
    ``open``), once on each path; each call of ``make`` may mint what the request spends."""
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder
    dispatched = []

    def on_dispatch(sender, **extra):
        dispatched.append(True)

    request_started.connect(on_dispatch, app)

    def once(lean: bool, make):
        app.config["LEAN_PROTOCOL"] = lean
        if app.config["RATELIMIT_ENABLED"]:
            with app.app_context():
                limiter.reset()
        request = make()  # which may itself send requests (a sign-in, a first exchange)
        minted = request.pop("minted", {})  # values minted for this request, and what they stand for
        dispatched.clear()
        before = _issued()
        try:
            response = client.open(**request)
        except Exception as exc:  # noqa: BLE001 - TESTING propagates what Flask would answer 500
            return {"raised": type(exc).__name__}, True
        response.get_data()  # the body read to its end: the request is over and noted
        noted = recorder.noted and tuple(_unminted(value, minted) for value in recorder.noted)
        return {"status": response.status_code, "json": _normal(response.get_json(silent=True)),
                "text": None if response.is_json else NONCE.sub("nonce", response.get_data(as_text=True)),
                "headers": sorted((k.lower(), NONCE.sub("nonce", v)) for k, v in response.headers
                                  if k.lower() not in UNCOMPARED_HEADERS),
                "noted": noted, "issued": _issued() - before}, bool(dispatched)

    def send(make, lean_path: bool | None = None):
        lean, lean_dispatched = once(True, make)
        route, route_dispatched = once(False, make)
        assert lean == route, {k: (lean.get(k), route.get(k)) for k in lean if lean.get(k) != route.get(k)}
        assert route_dispatched or "raised" in route
        if lean_path is not None and "raised" not in lean:
            assert lean_dispatched is not lean_path, "went the route" if lean_dispatched else "taken by the lean path"
        return lean

    send.client = client
    yield send
    request_started.disconnect(on_dispatch, app)
    app.config["LEAN_PROTOCOL"] = True


def _issued() -> float:
    return sum(sample.value for family in metrics.TOKENS_ISSUED.collect() for sample in family.samples
               if sample.name.endswith("_total"))


def _normal(value):
    """A JSON answer with its token values and ids made comparable."""
    if isinstance(value, dict):
        return {k: ("<token>" if k in TOKEN_VALUES and isinstance(v, str) else _normal(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{quote(client_id)}:{secret}".encode()).decode()}


def post(path, data, headers=None, content_type=FORM):
    body = data if isinstance(data, bytes) else "&".join(f"{quote(k)}={quote(v)}" for k, v in data).encode()
    return {"method": "POST", "path": path, "data": body, "headers": headers or {}, "content_type": content_type}


# -- client credentials -------------------------------------------------------------------------------------


def test_a_client_credentials_token(send, machine):
    answer = send(lambda: post("/token", [("grant_type", "client_credentials")], basic(machine)), lean_path=True)
    assert answer["status"] == 200 and answer["issued"] == 1
    assert answer["json"]["access_token"] == "<token>"
    assert answer["noted"] == ("oauth.token", machine["client_id"])
    headers = dict(answer["headers"])
    assert headers["cache-control"] == "no-store" and headers["pragma"] == "no-cache"
    assert "content-security-policy" in headers and headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("scope", ["administrations", "openid profile", "nonsense", "", "administrations nonsense"])
def test_client_credentials_with_a_scope(send, machine, scope):
    send(lambda: post("/token", [("grant_type", "client_credentials"), ("scope", scope)], basic(machine)), True)


def test_client_credentials_refusals(send, machine, poster, portal, public_app):
    wrong = _basic(machine["client_id"], "wrong-secret")
    cases = [
        (wrong, [("grant_type", "client_credentials")], 401),  # bad secret
        (_basic("nobody", "nothing"), [("grant_type", "client_credentials")], 401),  # unknown client
        (basic(poster), [("grant_type", "client_credentials")], 401),  # not its registered method
        ({}, [("grant_type", "client_credentials"), ("client_id", machine["client_id"]),
              ("client_secret", machine["client_secret"])], 401),  # not its registered method either
        ({}, [("grant_type", "client_credentials"), ("client_id", poster["client_id"]),
              ("client_secret", poster["client_secret"])], 200),
        ({}, [("grant_type", "client_credentials"), ("client_id", poster["client_id"]),
              ("client_secret", "wrong")], 401),
        (basic(machine), [("grant_type", "client_credentials"), ("client_secret", "x")], 400),  # two methods
        (basic(portal), [("grant_type", "client_credentials")], 400),  # not a grant it may use
        ({}, [("grant_type", "client_credentials"), ("client_id", public_app["client_id"])], 401),
        ({}, [("grant_type", "client_credentials")], 401),  # no client at all
    ]
    for headers, pairs, status in cases:
        answer = send(lambda: post("/token", pairs, headers), lean_path=True)
        assert answer["status"] == status, (headers, pairs, answer)
        if status == 401 and "Authorization" in headers:
            assert ("www-authenticate", 'Basic error="invalid_client"') in answer["headers"] or any(
                k == "www-authenticate" for k, _ in answer["headers"]), answer


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_CLIENT_AUTH_FAILURES_PER_ADDRESS="3 per minute")
def test_failed_client_authentication_is_throttled_alike(send, machine):
    wrong = _basic(machine["client_id"], "wrong-secret")

    def four_failures_then_the_right_secret():
        for _ in range(4):
            send.client.post("/token", data={"grant_type": "client_credentials"}, headers=wrong)
        return post("/token", [("grant_type", "client_credentials")], basic(machine))

    answer = send(four_failures_then_the_right_secret, lean_path=True)
    assert answer["status"] == 429 and ("retry-after", "60") in answer["headers"]


@pytest.mark.parametrize("base_url", ["http://idp.example.com", "http://localhost", "http://10.0.0.8:8000",
                                      "https://idp.example.com"])
def test_the_transport_is_checked_alike(send, machine, monkeypatch, base_url):
    def make():
        return {**post("/token", [("grant_type", "client_credentials")], basic(machine)), "base_url": base_url}

    first = send(make, lean_path=True)
    assert send(make, lean_path=True) == first  # its answer remembered, the same
    secure = base_url in ("http://localhost", "https://idp.example.com")
    assert first == {"raised": "InsecureTransportError"} if not secure else first["status"] == 200
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    assert send(make, lean_path=True)["status"] == 200


def test_the_lean_request_has_what_authlib_s_request_has(app):
    from authlib.oauth2.rfc6749 import OAuth2Request
    from werkzeug.test import EnvironBuilder

    from idp.web.lean import LeanRequest

    environ = EnvironBuilder(method="POST", base_url="https://idp.example.com", path="/token").get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    lean = LeanRequest(environ, ImmutableMultiDict())
    plain = OAuth2Request("POST", "https://idp.example.com/token", headers={})
    assert set(vars(plain)) <= set(vars(lean))
    assert {k: v for k, v in vars(plain).items() if k not in ("headers", "payload")} == \
        {k: getattr(lean, k) for k in vars(plain) if k not in ("headers", "payload")}


# -- refresh tokens -----------------------------------------------------------------------------------------


def test_a_refresh(send, portal, mint):
    answer = send(lambda: post("/token", [("grant_type", "refresh_token"), ("refresh_token", mint()[0])],
                               basic(portal)), lean_path=True)
    assert answer["status"] == 200 and set(answer["json"]) >= {"access_token", "refresh_token", "id_token"}
    assert answer["issued"] == 1


def test_refresh_refusals(app, send, portal, third_party, mint):
    def used():
        rt = mint()[0]
        assert send.client.post("/token", data={"grant_type": "refresh_token", "refresh_token": rt},
                                headers=basic(portal)).status_code == 200
        return rt

    cases = {
        "unknown": lambda: "not-a-token",
        "reused": used,
        "expired": lambda: mint(refresh_expires_at=T0 - dt.timedelta(seconds=1))[0],
        "revoked": lambda: mint(revoked_at=T0)[0],
        "wider scope": lambda: mint(scope="openid")[0],
    }
    for name, make_token in cases.items():
        extra = [("scope", "openid offline_access")] if name == "wider scope" else []
        answer = send(lambda: post("/token", [("grant_type", "refresh_token"), ("refresh_token", make_token()),
                                              *extra], basic(portal)), lean_path=True)
        assert answer["status"] == 400, (name, answer)
    answer = send(lambda: post("/token", [("grant_type", "refresh_token"), ("refresh_token", mint()[0])],
                               basic(third_party)), lean_path=True)
    assert answer["json"]["error"] == "invalid_grant"
    answer = send(lambda: post("/token", [("grant_type", "refresh_token")], basic(portal)), lean_path=True)
    assert answer["json"]["error"] == "invalid_request"


# -- authorization codes ------------------------------------------------------------------------------------


@pytest.fixture
def code_for(signed_in, portal):
    """``code_for(client)``: a fresh authorization code that the signed-in browser brings back to
    ``client`` (the portal by default), and its PKCE verifier."""

    def code_for(client=None, **params):
        signed_in.authorize((client or portal)["client_id"], **params)
        return signed_in.callback_params()["code"], signed_in.verifier

    return code_for


def exchange(code: str, verifier: str | None, headers: dict, redirect_uri: str = REDIRECT_URI, **extra) -> dict:
    pairs = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)]
    if verifier is not None:
        pairs.append(("code_verifier", verifier))
    return {**post("/token", pairs + list(extra.items()), headers), "minted": {code: "{code}"}}


def test_a_code_exchange(send, portal, code_for):
    answer = send(lambda: exchange(*code_for(), basic(portal)), lean_path=True)
    assert answer["status"] == 200 and answer["issued"] == 1
    assert set(answer["json"]) >= {"access_token", "id_token", "scope", "expires_in"}
    assert answer["noted"] == ("oauth.token", portal["client_id"])


def test_a_public_client_s_code_exchange(send, public_app, code_for):
    answer = send(lambda: exchange(*code_for(public_app), {}, client_id=public_app["client_id"]), lean_path=True)
    assert answer["status"] == 200 and "access_token" in answer["json"]


def test_code_exchange_refusals(send, portal, public_app, code_for):
    def used():
        request = exchange(*code_for(), basic(portal))
        first = dict(request)
        first.pop("minted")
        assert send.client.open(**first).status_code == 200
        return request

    def expired():
        clock.freeze(T0)
        request = exchange(*code_for(), basic(portal))
        clock.freeze(T0 + dt.timedelta(hours=1))
        return request

    cases = {
        "wrong verifier": lambda: exchange(code_for()[0], "x" * 43, basic(portal)),
        "no verifier": lambda: exchange(code_for()[0], None, basic(portal)),
        "another redirect URI": lambda: exchange(*code_for(), basic(portal), "http://app.example/callback"),
        "another client's code": lambda: exchange(*code_for(public_app), basic(portal)),
        "unknown code": lambda: exchange("not-a-code", "x" * 43, basic(portal)),
        "used": used,
        "expired": expired,
        "no code": lambda: post("/token", [("grant_type", "authorization_code"), ("redirect_uri", REDIRECT_URI)],
                                basic(portal)),
    }
    try:
        for name, make in cases.items():
            answer = send(make, lean_path=True)
            assert answer["status"] in (400, 401), (name, answer)
            assert answer["issued"] == 0, name
    finally:
        clock.freeze(T0)


# -- introspection ------------------------------------------------------------------------------------------


def test_introspection(send, portal, third_party, api, machine, mint):
    def machine_token():
        return send.client.post("/token", data={"grant_type": "client_credentials"},
                                headers=basic(machine)).get_json()["access_token"]

    cases = [
        (basic(portal), lambda: [("token", mint()[1])], True),
        (basic(portal), lambda: [("token", mint()[0]), ("token_type_hint", "refresh_token")], True),
        (basic(portal), lambda: [("token", mint()[0]), ("token_type_hint", "access_token")], True),
        (basic(portal), lambda: [("token", "unknown")], False),
        (basic(third_party), lambda: [("token", mint()[1])], False),  # not its token
        (basic(api), lambda: [("token", mint()[1])], True),  # a resource server sees every token
        (basic(api), lambda: [("token", machine_token())], True),
        (basic(portal), lambda: [("token", mint(expires_in=1, issued_at=T0 - dt.timedelta(hours=1))[1])], False),
    ]
    for headers, pairs, active in cases:
        answer = send(lambda: post("/introspect", pairs(), headers), lean_path=True)
        assert answer["status"] == 200 and answer["json"]["active"] is active, answer
        assert answer["noted"][0] == "oauth.introspect"
    for headers, pairs, status in [
        (_basic(portal["client_id"], "wrong"), [("token", "x")], 401),
        (basic(portal), [("token_type_hint", "access_token")], 400),
        (basic(portal), [], 400),  # an empty body goes the route
        (basic(portal), [("token", "x"), ("token_type_hint", "id_token")], 401),  # Authlib's status for it
        ({}, [("token", "x"), ("client_id", portal["client_id"]), ("client_secret", portal["client_secret"])], 200),
        ({}, [("token", "x"), ("client_id", portal["client_id"])], 401),
    ]:
        answer = send(lambda: post("/introspect", pairs, headers), lean_path=bool(pairs))
        assert answer["status"] == status, (pairs, answer)


# -- what goes the route ------------------------------------------------------------------------------------


def test_unusual_requests_go_the_route(send, machine, portal, mint):
    cc = [("grant_type", "client_credentials")]
    auth = basic(machine)
    routed = [
        post("/token", cc + [("grant_type", "client_credentials")], auth),  # a parameter twice
        post("/token", b"grant_type=client_credentials&scope=\xff\xfe", auth),  # not UTF-8
        post("/token", b"grant_type=client_credentials&x=" + b"a" * (64 * 1024), auth),  # too large
        post("/token", cc, {"Authorization": "Basic !!!"}),  # malformed header
        post("/token", cc, {"Authorization": "Bearer"}),
        post("/token", cc, {**auth, "Origin": "http://app.test"}),
        post("/token", cc, {**auth, "DPoP": "not.a.proof"}),
        post("/token", cc, auth, content_type="application/json"),
        post("/token", cc, auth, content_type="text/plain"),
        post("/token", b"", auth),
        post("/token", [("grant_type", "password"), ("username", "x"), ("password", "y")], auth),
        post("/token", [("grant_type", "nonsense")], auth),
        post("/token", [("scope", "x")], auth),
        post("/token", cc + [("client_assertion_type", "x"), ("client_assertion", "y")], {}),
        {**post("/token", cc, auth), "method": "PUT"},
        {**post("/token", cc, auth), "query_string": "grant_type=refresh_token"},
        {**post("/introspect", [("token", "x")], basic(portal)), "query_string": "token=y"},
        {**post("/token", cc, auth), "path": "/token/"},
        {"method": "OPTIONS", "path": "/token", "headers": {"Origin": "http://app.test",
                                                             "Access-Control-Request-Method": "POST"}},
    ]
    for request in routed:
        try:
            send(lambda: dict(request), lean_path=False)
        except AssertionError as err:
            raise AssertionError(f"{request}: {err}") from None


def test_a_request_with_cookies_goes_the_route(send, client, machine):
    client.set_cookie("session", "x")
    send(lambda: post("/token", [("grant_type", "client_credentials")], basic(machine)), lean_path=False)


def test_a_chunked_body_is_read_and_taken(send, machine):
    def chunked():
        return {"method": "POST", "path": "/token", "input_stream": io.BytesIO(b"grant_type=client_credentials"),
                "content_type": FORM, "headers": {**basic(machine), "Transfer-Encoding": "chunked"},
                "environ_overrides": {"CONTENT_LENGTH": ""}}  # as a server passes a chunked body on

    answer = send(chunked, lean_path=True)
    assert answer["status"] == 200


# -- failures, as the application's error handlers answer them ------------------------------------------------


@pytest.mark.parametrize("error", [
    OperationalError("SELECT", {}, Exception("server closed the connection")),
    DataError("SELECT", {}, Exception("invalid byte sequence")),
    StorageError(ConnectionError("Redis is away")),
    DomainError("refused"),
    RuntimeError("a bug"),
])
def test_an_exception_is_answered_as_flask_answers_it(monkeypatch, send, portal, mint, error):
    from idp.oauth import introspection

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(introspection.tokens, "find_by_hint", fail)
    answer = send(lambda: post("/introspect", [("token", mint()[1])], basic(portal)))
    if isinstance(error, OperationalError):
        assert answer["status"] == 503 and answer["json"]["error"] == "temporarily_unavailable"
    if isinstance(error, StorageError):
        assert answer["status"] == 503 and answer["json"]["error"] == "temporarily_unavailable"
    if isinstance(error, DataError):
        assert answer["status"] == 400 and answer["json"]["error"] == "invalid_request"


def test_a_failing_commit_is_answered_as_flask_answers_it(monkeypatch, app, send, portal, mint, caplog):
    from idp import unit_of_work

    def fail():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(unit_of_work, "commit", fail)
    # An introspection reads on a connection of its own and has nothing to commit: here it
    # reads in the request's transaction, which the commit then ends.
    monkeypatch.setattr(unit_of_work, "_session_holds_work", lambda: True)
    answer = send(lambda: post("/introspect", [("token", mint()[1])], basic(portal)))
    assert answer == {"raised": "OperationalError"}  # TESTING propagates it; in production: 503
    app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = send(lambda: post("/introspect", [("token", mint()[1])], basic(portal)))
    assert answer["status"] == 503 and answer["json"]["error"] == "temporarily_unavailable"
    # The database gone under a commit is not a bug: one warning, no error line with a traceback.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert any(r.levelno == logging.WARNING and "database unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_limits_away_are_answered_alike(monkeypatch, send, machine):
    def away(*args, **kwargs):
        raise StorageError(ConnectionError("Redis is away"))

    monkeypatch.setattr(limiter.limiter, "hit", away)
    monkeypatch.setattr(limiter.limiter, "test", away)
    wrong = _basic(machine["client_id"], "wrong-secret")
    send(lambda: post("/token", [("grant_type", "client_credentials")], basic(machine)), lean_path=True)
    send(lambda: post("/token", [("grant_type", "client_credentials")], wrong), lean_path=True)


def test_the_switch_is_checked(app):
    from idp.config import ConfigError, validate

    app.config["LEAN_PROTOCOL"] = "yes"
    with pytest.raises(ConfigError):
        validate(app)
    app.config["LEAN_PROTOCOL"] = True


# -- any request ----------------------------------------------------------------------------------------------

KEYS = ["grant_type", "scope", "refresh_token", "client_id", "client_secret", "token", "token_type_hint", "x"]
VALUES = st.one_of(
    st.sampled_from(["client_credentials", "refresh_token", "authorization_code", "{refresh}", "{access}",
                     "{machine}", "{portal}", "{secret}", "openid", "administrations", "access_token", "", " "]),
    st.text(max_size=30),
)
AUTH = st.sampled_from(["machine", "portal", "wrong", "unknown", "malformed", "none"])
EXTRA = st.sampled_from([{}, {}, {"Accept": "text/html"}, {"Accept-Language": "en"}, {"Origin": "http://evil.test"},
                         {"X-Forwarded-For": "10.0.0.1"}])


@EXAMPLES
@given(path=st.sampled_from(["/token", "/introspect"]), pairs=st.lists(st.tuples(st.sampled_from(KEYS), VALUES),
                                                                      max_size=6),
       auth=AUTH, extra=EXTRA, tail=st.sampled_from([b"", b"", b"&", b"&&", b"=", b"%zz", b"%ff"]))
def test_any_request_is_answered_alike(send, machine, portal, mint, path, pairs, auth, extra, tail):
    headers = dict(extra)
    if auth in ("machine", "portal"):
        headers.update(basic({"machine": machine, "portal": portal}[auth]))
    elif auth == "wrong":
        headers.update(_basic(portal["client_id"], "wrong"))
    elif auth == "unknown":
        headers.update(_basic("nobody", "x"))
    elif auth == "malformed":
        headers["Authorization"] = "Basic"

    def make():
        rt, at = mint()
        values = {"{refresh}": rt, "{access}": at, "{machine}": machine["client_id"], "{portal}": portal["client_id"],
                  "{secret}": portal["client_secret"]}
        body = "&".join(f"{quote(k)}={quote(values.get(v, v))}" for k, v in pairs).encode() + tail
        return {**post(path, body, headers), "minted": {rt: "{refresh}", at: "{access}"}}

    send(make)
