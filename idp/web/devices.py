"""The device cookie: a browser where an account completed a sign-in is familiar to it.

A long-lived, signed, HttpOnly cookie holding a random device id and the ids of the accounts
that signed in on this browser. The smart lockout (services/smart_lockout.py) counts wrong
passwords from a familiar browser apart from those of everyone else, so an attacker elsewhere
cannot lock the owner out of the browser they use. It proves nothing on its own: the password
and the second factor are asked as always.
"""

from __future__ import annotations

import secrets

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..services import crypto
from .cookie_sessions import KeptKeySigner

COOKIE = "idp_device"
# Accounts remembered per browser (a shared computer); the oldest falls off.
MAX_ACCOUNTS = 5


def _serializer() -> URLSafeTimedSerializer:
    # The signer derives its key from the device-cookie key once (cookie_sessions.KeptKeySigner).
    return URLSafeTimedSerializer(crypto.derive_key("device-cookie"), salt="idp-device", signer=KeptKeySigner)


def current() -> tuple[str | None, tuple[str, ...]]:
    """(device id, account ids) of this browser's valid device cookie, or (None, ())."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 1024:
        return None, ()
    try:
        value = _serializer().loads(raw, max_age=current_app.config["DEVICE_COOKIE_LIFETIME"])
    except BadSignature:
        return None, ()
    if not isinstance(value, dict) or not isinstance(value.get("d"), str) or not isinstance(value.get("a"), list):
        return None, ()
    return value["d"], tuple(a for a in value["a"] if isinstance(a, str))


def remember(response, account_id: str):
    """Mark this browser familiar to ``account_id`` (a completed sign-in); the signature is renewed."""
    device_id, accounts = current()
    accounts = [a for a in accounts if a != account_id] + [account_id]
    value = {"d": device_id or secrets.token_urlsafe(16), "a": accounts[-MAX_ACCOUNTS:]}
    response.set_cookie(
        COOKIE,
        _serializer().dumps(value),
        max_age=current_app.config["DEVICE_COOKIE_LIFETIME"],
        httponly=True,
        secure=current_app.config["ISSUER"].startswith("https://"),
        samesite="Lax",
        path="/",
    )
    return response
