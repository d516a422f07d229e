"""What browser and native apps rely on, without a request: the redirect URI rules (RFC 8252),
pushed requests kept and redeemed once, single-use values, and the DPoP server nonces."""

from __future__ import annotations

import datetime as dt

import pytest

from idp import clock, redirect_uris
from idp.extensions import db
from idp.models import UsedDpopProof
from idp.oauth import dpop
from idp.services import pushed_requests, single_use
from tests.helpers import make_client


@pytest.mark.parametrize("registered,presented,matches", [
    ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb", True),
    ("http://127.0.0.1/cb", "http://127.0.0.1/cb", True),
    ("http://[::1]/cb", "http://[::1]:51004/cb", True),
    ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb/", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb?a=1", False),
    ("http://127.0.0.1/cb", "https://127.0.0.1:51004/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:x/cb", False),
    ("http://127.0.0.1/cb", "http://a@127.0.0.1:51004/cb", False),
    ("http://127.0.0.1:8400/cb", "http://127.0.0.1:8401/cb", False),
    ("http://localhost/cb", "http://localhost:51004/cb", False),
    ("https://app.example/cb", "https://app.example:8443/cb", False),
    ("com.example.app:/cb", "com.example.app:/cb", True),
    ("com.example.app:/cb", "com.example.app:/other", False),
])
def test_which_redirect_uris_match(registered, presented, matches):
    assert redirect_uris.registered([registered], presented) is matches


@pytest.mark.parametrize("uri,public,problem", [
    ("https://app.example/cb", False, None),
    ("http://127.0.0.1/cb", False, None),
    ("com.example.app:/cb", True, None),
    ("com.example.app:/cb", False, "public"),
    ("myapp:/cb", True, "reverse domain"),
    ("javascript:alert(1)", True, "reverse domain"),
    ("https://app.example/cb#x", False, "fragment"),
    ("https:///cb", False, "absolute"),
    ("//app.example/cb", False, "absolute"),
])
def test_what_may_be_registered(uri, public, problem):
    found = redirect_uris.problem(uri, public=public)
    assert (found is None) if problem is None else (problem in found), found


@pytest.mark.parametrize("uri,origin", [
    ("https://App.Example:443/cb?x=1", "https://app.example"),
    ("http://127.0.0.1:5173/cb", "http://127.0.0.1:5173"),
    ("http://[::1]:5173/", "http://[::1]:5173"),
    ("http://127.0.0.1/cb", None),   # a native app's: it takes any port
    ("com.example.app:/cb", None),
])
def test_the_web_origin_of_a_redirect_uri(uri, origin):
    assert redirect_uris.web_origin(uri) == origin


@pytest.mark.parametrize("value", ["*", "null", "https://app.example/x", "https://*.app.example", "https://u@app.example",
                                   "app.example", "https://app.example?x", "https://app.example:99999"])
def test_what_is_no_origin(value):
    assert redirect_uris.origin(value) is None


def test_a_pushed_request_is_redeemed_once_by_its_client(app, ctx):
    portal = make_client(app, name="Portal")
    request_uri, lifetime = pushed_requests.push(portal["client_id"], {"scope": "openid"})
    db.session.commit()
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:") and lifetime == 60
    assert pushed_requests.redeem(request_uri, "another-client") is None
    assert pushed_requests.redeem(request_uri + "x", portal["client_id"]) is None
    assert pushed_requests.redeem(request_uri, portal["client_id"]) == {"scope": "openid"}
    assert pushed_requests.redeem(request_uri, portal["client_id"]) is None


def test_a_pushed_request_expires(app, ctx):
    portal = make_client(app, name="Portal")
    request_uri, lifetime = pushed_requests.push(portal["client_id"], {})
    db.session.commit()
    clock.advance(seconds=lifetime)
    assert pushed_requests.redeem(request_uri, portal["client_id"]) is None


def test_a_single_use_value_is_used_once(ctx):
    expires = clock.now() + dt.timedelta(minutes=2)
    assert single_use.first_use(UsedDpopProof, "k1", expires) is True
    assert single_use.first_use(UsedDpopProof, "k1", expires) is False
    assert single_use.first_use(UsedDpopProof, "k2", expires) is True


def test_nonces_are_current_for_their_period_and_the_next(app, ctx):
    lifetime = app.config["DPOP_NONCE_LIFETIME"]
    nonce = dpop.nonce()
    assert dpop._nonce_current(nonce)
    clock.advance(seconds=lifetime)
    assert dpop._nonce_current(nonce) and dpop.nonce() != nonce
    clock.advance(seconds=lifetime)
    assert not dpop._nonce_current(nonce)
    for forged in (None, "", "x", nonce.split(".")[0] + ".AAAA", "1" * 80):
        assert not dpop._nonce_current(forged)


def test_nonces_made_before_a_secret_rotation_stay_current(app, ctx):
    nonce = dpop.nonce()
    app.config["PREVIOUS_SECRET_KEYS"] = [app.config["SECRET_KEY"]]
    app.config["SECRET_KEY"] = "another-secret-key-that-is-long-enough-0123456789"
    assert dpop._nonce_current(nonce) and dpop.nonce() != nonce


@pytest.mark.parametrize("value,valid", [("a" * 43, True), ("A-_" * 14 + "z", True), ("a" * 42, False),
                                         ("a" * 44, False), ("a" * 42 + "=", False), ("a" * 42 + "é", False), (None, False)])
def test_a_dpop_jkt_is_a_thumbprint(value, valid):
    assert dpop.valid_jkt(value) is valid
