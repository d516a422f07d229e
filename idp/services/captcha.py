"""Proof-of-work CAPTCHA (ALTCHA): no third-party service, no tracking.

``new_challenge()`` is what the ``<altcha-widget>`` fetches: a challenge signed with a
key derived from the app secret, valid for ``CAPTCHA_LIFETIME`` (ten minutes). The
browser searches for the counter the challenge was built from, drawn below
``CAPTCHA_MAX_NUMBER``; that takes about a second (the sizes are explained in config.py). ``verify()`` checks the payload the widget puts into the form field
``altcha``: signature, expiry and solution, and that the challenge was not used
before. The used challenge is added to the session; the caller commits, as with every
other service.
"""

from __future__ import annotations

import logging
import secrets

import altcha
from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..config import DEFAULTS
from ..extensions import db
from ..models.captcha import UsedCaptcha
from ..unit_of_work import kept
from . import crypto

log = logging.getLogger(__name__)

# Key derivation the browser repeats for every counter it tries. PBKDF2 runs natively
# in the browser (WebCrypto), so a bot in native code gains little over a person
# (plain SHA-256 would be some 50 times faster outside a browser).
ALGORITHM = "PBKDF2/SHA-256"
# A real payload is under 1 kB; anything much larger is not worth decoding.
MAX_PAYLOAD_LENGTH = 4096


def _key() -> bytes:
    return crypto.derive_key("altcha")


def _verified(payload: str) -> bool:
    # A challenge handed out just before a secret rotation is still accepted.
    return any(altcha.verify_solution(payload, key).verified for key in crypto.derive_keys("altcha"))


def _max_number() -> int:
    value = current_app.config.get("CAPTCHA_MAX_NUMBER", DEFAULTS["CAPTCHA_MAX_NUMBER"])
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = DEFAULTS["CAPTCHA_MAX_NUMBER"]
    return max(1, value)


def new_challenge() -> dict:
    """A fresh signed challenge as a JSON-serialisable dict (``parameters``, ``signature``)."""
    challenge = altcha.create_challenge(
        ALGORITHM,
        current_app.config["CAPTCHA_COST"],
        counter=secrets.randbelow(_max_number()),
        expires_at=clock.timestamp() + current_app.config["CAPTCHA_LIFETIME"],
        hmac_secret=_key(),
    )
    return challenge.to_dict()


def _checked(payload: str) -> tuple[str, int] | None:
    """(signature, expiry) of a correctly solved, unexpired challenge of ours, else None."""
    if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD_LENGTH:
        return None
    if not _verified(payload):
        return None
    challenge = altcha.Payload.from_base64(payload).challenge
    signature = challenge.signature
    expires_at = challenge.parameters.expires_at
    if not isinstance(signature, str) or not signature or len(signature) > 128:
        return None
    # Checked against our clock too (the library uses the system time).
    if type(expires_at) is not int or expires_at <= clock.timestamp():
        return None
    return signature, expires_at


def verify(payload: str) -> bool:
    """True once for a correct solution of a live challenge issued by us. False for
    anything else (garbage, a wrong solution, expired, already used); never raises on
    bad input."""
    try:
        checked = _checked(payload)
    except Exception:  # noqa: BLE001 - whatever the browser sent, it is a refusal
        log.debug("captcha payload refused", exc_info=True)
        return False
    if checked is None:
        return False
    signature, expires_at = checked
    now = clock.now()
    expiry = clock.from_timestamp(expires_at)
    try:
        # Spent for good, even when the step that checked it fails afterwards.
        with kept():
            db.session.execute(delete(UsedCaptcha).where(UsedCaptcha.expires_at < now))
            if db.session.scalar(select(UsedCaptcha.signature).where(UsedCaptcha.signature == signature)):
                return False
            db.session.add(UsedCaptcha(signature=signature, expires_at=expiry))
    except IntegrityError:  # the same solution, verified concurrently
        return False
    return True
