"""Signing keys in the database: the newest active key signs, retired keys stay published
until the tokens they signed have expired."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import current_app
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import or_, select

from .. import clock
from ..extensions import db
from ..models import SigningKey
from . import crypto

PURPOSE = "signing-key"
_cache: dict = {}
_lock = threading.Lock()
CACHE_SECONDS = 10


def generate() -> SigningKey:
    key = RSAKey.generate_key(2048, auto_kid=True)
    private = key.as_dict(private=True)
    public = key.as_dict(private=False)
    public.update({"use": "sig", "alg": "RS256"})
    row = SigningKey(
        kid=public["kid"], alg="RS256", private_jwk=crypto.encrypt_text(json.dumps(private), PURPOSE), public_jwk=public
    )
    db.session.add(row)
    return row


def rotate() -> SigningKey:
    """Publish a new signing key; the old ones stop signing but stay in the JWKS until
    every token they signed has expired."""
    now = clock.now()
    keep = dt.timedelta(
        seconds=max(current_app.config["ID_TOKEN_LIFETIME"], current_app.config["ACCESS_TOKEN_LIFETIME"]) + 300
    )
    for old in db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        old.retired_at = now
        old.publish_until = now + keep
    row = generate()
    db.session.commit()
    _cache.clear()
    return row


def ensure() -> None:
    """Create the first key if there is none (at start-up and migration)."""
    if db.session.scalar(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)).limit(1)) is None:
        generate()
        db.session.commit()


def _load() -> dict:
    now = clock.now()
    rows = list(
        db.session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.publish_until > now))
            .order_by(SigningKey.created_at.desc())
        )
    )
    active = [r for r in rows if r.retired_at is None]
    if not active:
        ensure()
        return _load()
    current = active[0]
    previous = _cache.get("keys")
    if previous is not None and previous["kid"] == current.kid and previous["sealed"] == current.private_jwk:
        private = previous["private"]  # unchanged: importing an RSA key checks it, which is slow
    else:
        private = RSAKey.import_key(json.loads(crypto.decrypt_text(current.private_jwk, PURPOSE)))
    public_jwks = {"keys": [r.public_jwk for r in rows]}
    if previous is not None and previous["public_jwks"] == public_jwks:
        public_keyset = previous["public_keyset"]  # the same keys published: parsed once, not per check
    else:
        public_keyset = KeySet.import_key_set(public_jwks)
    return {
        "kid": current.kid,
        "sealed": current.private_jwk,
        "private": private,
        # The encoded JWS header of what it signs (sign_jwt), made at the first signature.
        "jwt_header": None,
        "public_jwks": public_jwks,
        "public_keyset": public_keyset,
        "loaded": time.monotonic(),
    }


def _current() -> dict:
    # Keys change only on rotation; each worker re-reads them every few seconds.
    with _lock:
        entry = _cache.get("keys")
        if entry is None or time.monotonic() - entry["loaded"] > CACHE_SECONDS:
            entry = _cache["keys"] = _load()
        return entry


def signing_key() -> tuple[str, RSAKey]:
    entry = _current()
    return entry["kid"], entry["private"]


# RS256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 section 3.3).
_PKCS1V15 = padding.PKCS1v15()
# JSON as joserfc writes a JWS header and a JWT's claims (json.dumps with these settings makes
# an encoder per call).
_HEADER_JSON = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
_CLAIMS_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_jwt(claims: dict) -> str:
    """``claims`` as a JWT (JWS compact serialization, RS256) signed by the current key, with
    the header ``{"typ": "JWT", "alg": "RS256", "kid": ...}``: byte for byte what
    ``joserfc.jwt.encode`` makes of the same header, claims and key, without its per-call
    checks of a header and key that are always the same (the encoded header is kept with
    the key)."""
    entry = _current()
    header = entry["jwt_header"]
    if header is None:
        text = _HEADER_JSON.encode({"typ": "JWT", "alg": "RS256", "kid": entry["kid"]})
        header = entry["jwt_header"] = _b64(text.encode("ascii"))
    payload = _CLAIMS_JSON.encode(claims).encode()
    signing_input = header + b"." + _b64(payload)
    signature = entry["private"].private_key.sign(signing_input, _PKCS1V15, hashes.SHA256())
    return (signing_input + b"." + _b64(signature)).decode("ascii")


def public_jwks() -> dict:
    return _current()["public_jwks"]


def public_keyset() -> KeySet:
    """The published keys, parsed (for checking what this provider signed); only read."""
    return _current()["public_keyset"]


def clear_cache() -> None:
    _cache.clear()
