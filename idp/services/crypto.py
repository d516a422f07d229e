"""Encryption of secrets at rest and keyed hashes of short codes, from the app secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _derive(purpose: bytes) -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp:" + purpose).derive(secret)


def encrypt(plaintext: bytes, purpose: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_derive(purpose.encode())).encrypt(nonce, plaintext, purpose.encode())


def decrypt(blob: bytes, purpose: str) -> bytes:
    return AESGCM(_derive(purpose.encode())).decrypt(blob[:12], blob[12:], purpose.encode())


def encrypt_text(plaintext: str, purpose: str) -> str:
    return base64.b64encode(encrypt(plaintext.encode(), purpose)).decode()


def decrypt_text(blob: str, purpose: str) -> str:
    return decrypt(base64.b64decode(blob), purpose).decode()


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 for short secrets (6-digit codes) that a plain hash would not protect."""
    return hmac.new(_derive(purpose.encode()), value.encode(), hashlib.sha256).hexdigest()


def token_hash(value: str) -> str:
    """SHA-256 of a random 256-bit token: enough, since such a token cannot be guessed."""
    return hashlib.sha256(value.encode()).hexdigest()


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
