"""Encryption of secrets at rest and keyed hashes of short codes, from the app secret."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from ..models.base import token_hash  # noqa: F401 - the stored format lives with the models; services import it here


def derive_key(purpose: str) -> bytes:
    """A 256-bit key for one ``purpose``, derived from the app secret (HKDF-SHA256)."""
    return _derive(current_app.config["SECRET_KEY"], purpose)


@functools.lru_cache(maxsize=16)
def _derive(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp:" + purpose.encode()).derive(secret.encode())


def encrypt(plaintext: bytes, purpose: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(derive_key(purpose)).encrypt(nonce, plaintext, purpose.encode())


def decrypt(blob: bytes, purpose: str) -> bytes:
    return AESGCM(derive_key(purpose)).decrypt(blob[:12], blob[12:], purpose.encode())


def encrypt_text(plaintext: str, purpose: str) -> str:
    return base64.b64encode(encrypt(plaintext.encode(), purpose)).decode()


def decrypt_text(blob: str, purpose: str) -> str:
    return decrypt(base64.b64decode(blob), purpose).decode()


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 for short secrets (6-digit codes) that a plain hash would not protect."""
    return hmac.new(derive_key(purpose), value.encode(), hashlib.sha256).hexdigest()


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
