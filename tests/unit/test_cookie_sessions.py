"""The session cookie: a value checked once is opened again without itsdangerous, but exactly as
itsdangerous would open it (age, keys, tampering), and each request gets its own copy."""

from __future__ import annotations

import time

import pytest

from idp.web import cookie_sessions


def _open(app, cookie: str | None):
    headers = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}"} if cookie is not None else {}
    with app.test_request_context(headers=headers) as ctx:
        return app.session_interface.open_session(app, ctx.request)


def _cookie(app, data: dict) -> str:
    return app.session_interface.get_signing_serializer(app).dumps(data)


def test_a_cookie_opens_the_same_twice_and_each_request_has_its_own_copy(app):
    cookie = _cookie(app, {"flows": ["a", "b"], "sid": "s1"})
    first = _open(app, cookie)
    assert dict(first) == {"flows": ["a", "b"], "sid": "s1"}
    first["flows"].append("changed in place")
    second = _open(app, cookie)
    assert dict(second) == {"flows": ["a", "b"], "sid": "s1"}
    assert not second.modified


def test_a_tampered_cookie_opens_empty_also_after_the_genuine_one(app):
    cookie = _cookie(app, {"sid": "s1"})
    assert _open(app, cookie)["sid"] == "s1"
    payload, stamp, signature = cookie.rsplit(".", 2)
    forged = f"{payload}.{stamp}.{('A' if signature[0] != 'A' else 'B') + signature[1:]}"
    assert dict(_open(app, forged)) == {}
    assert dict(_open(app, cookie + "x")) == {}


def test_a_cookie_past_its_age_opens_empty_also_when_it_was_checked_before(app, monkeypatch):
    cookie = _cookie(app, {"sid": "s1"})
    assert _open(app, cookie)["sid"] == "s1"
    max_age = int(app.permanent_session_lifetime.total_seconds())
    later = time.time() + max_age + 5
    monkeypatch.setattr(cookie_sessions.time, "time", lambda: later)
    assert dict(_open(app, cookie)) == {}


def test_a_cookie_of_a_secret_no_longer_used_opens_empty(app):
    cookie = _cookie(app, {"sid": "s1"})
    assert _open(app, cookie)["sid"] == "s1"
    app.config["SECRET_KEY"] = app.secret_key = "another secret of enough length for the tests 0123456789"
    assert dict(_open(app, cookie)) == {}


def test_a_cookie_of_the_previous_secret_opens_while_it_is_a_fallback(app):
    cookie = _cookie(app, {"sid": "s1"})
    old = app.secret_key
    app.config["SECRET_KEY"] = app.secret_key = "another secret of enough length for the tests 0123456789"
    app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert _open(app, cookie)["sid"] == "s1"
    assert _open(app, cookie)["sid"] == "s1"


@pytest.mark.parametrize("secret", ["a text secret", b"a bytes secret"])
def test_the_kept_derived_key_is_the_one_itsdangerous_derives(secret):
    from itsdangerous import TimestampSigner

    for salt in ("cookie-session", "another salt"):
        ours = cookie_sessions.KeptKeySigner(secret, salt=salt, key_derivation="hmac")
        theirs = TimestampSigner(secret, salt=salt, key_derivation="hmac")
        assert ours.derive_key() == theirs.derive_key() == ours.derive_key()
        assert theirs.unsign(ours.sign(b"value")) == b"value"
