"""Authenticator-app codes (RFC 6238): enrolment, verification with ±1 step and no replay."""

from __future__ import annotations

import base64

import pyotp
import qrcode
from qrcode.image.svg import SvgPathImage

from .. import clock
from . import crypto

STEP = 30
PURPOSE = "totp-secret"


def new_secret() -> str:
    return pyotp.random_base32(32)


def seal(secret: str) -> bytes:
    return crypto.encrypt(secret.encode(), PURPOSE)


def unseal(blob: bytes) -> str:
    return crypto.decrypt(blob, PURPOSE).decode()


def provisioning_uri(secret: str, email: str, issuer_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer_name)


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an SVG image (one path, drawn by qrcode itself) in a data: URI:
    no imaging library is loaded for it."""
    svg = qrcode.make(uri, image_factory=SvgPathImage, border=2).to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def format_secret(secret: str) -> str:
    """The manual key in groups of four, as authenticator apps show it."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _counters_of(secret: str, code: str) -> list[int]:
    """The time-step counters within reach (now, one before, one after) whose code is ``code``."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return []
    totp = pyotp.TOTP(secret)
    current = clock.timestamp() // STEP
    return [c for c in (current - 1, current, current + 1) if crypto.equal(totp.generate_otp(c), code)]


def matching_counter(secret: str, code: str, after: int = 0) -> int | None:
    """The time-step counter ``code`` belongs to (now, one before or one after),
    provided it is later than ``after``; None when the code is wrong or replayed."""
    return next((c for c in _counters_of(secret, code) if c > after), None)


def used_already(secret: str, code: str, last: int) -> bool:
    """Whether ``code`` is right but of a time step at or before ``last``, the last one accepted."""
    return any(c <= last for c in _counters_of(secret, code))


def code_for(secret: str, counter: int | None = None) -> str:
    """The code of a time step (tests and the benchmark play the authenticator app)."""
    if counter is None:
        counter = clock.timestamp() // STEP
    return pyotp.TOTP(secret).generate_otp(counter)
