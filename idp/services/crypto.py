"""Encryption of secrets at rest and keyed hashes of short codes, from the app secret.

Every key is derived from IDP_SECRET_KEY (which encrypts and signs) or one of
IDP_PREVIOUS_SECRET_KEYS (which still decrypt and verify, so the secret can be rotated
without a flag day). A ciphertext names the key that made it: a short key id, a hash
prefix of the derived key, so instances need no shared counter to agree on versions.
`idp keys reencrypt` (services.reencrypt) moves every stored ciphertext to the current
secret; after that the previous secrets can be removed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from ..kept import Kept
from ..models.base import token_hash  # noqa: F401 - the stored format lives with the models; services import it here

# Ciphertext layout: VERSION (1 byte) | key id (KEY_ID_BYTES) | nonce (12) | AES-GCM ciphertext and tag.
# Values written before key ids existed are nonce | ciphertext and are still read.
VERSION = b"\x01"
KEY_ID_BYTES = 4
NONCE_BYTES = 12


class UndecryptableError(ValueError):
    """No configured secret opens this ciphertext (the secret that made it was removed)."""


def app_config():
    """The application's configuration: through the proxy's object, as ``current_app.config``
    (an attribute the proxy finds only after the ordinary look-up fails) costs five times more,
    on every token issued and verified."""
    return current_app._get_current_object().config


def secrets_in_use() -> list[str]:
    """The current secret first, then the previous ones, without repeats."""
    config = app_config()
    seen: list[str] = []
    for secret in [config["SECRET_KEY"], *config.get("PREVIOUS_SECRET_KEYS", [])]:
        if secret not in seen:
            seen.append(secret)
    return seen


def derive_key(purpose: str) -> bytes:
    """The current 256-bit key for one ``purpose``: what encrypts and signs."""
    return _derive(app_config()["SECRET_KEY"], purpose)


def derive_keys(purpose: str) -> list[bytes]:
    """Every key for ``purpose`` that still decrypts and verifies, the current one first."""
    return [_derive(secret, purpose) for secret in secrets_in_use()]


@functools.lru_cache(maxsize=64)
def _derive(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idp:" + purpose.encode()).derive(secret.encode())


def key_id(key: bytes) -> bytes:
    """A short public name of a derived key. A hash prefix reveals nothing of a 256-bit
    key and every instance computes the same one."""
    return hashlib.sha256(b"idp-key-id:" + key).digest()[:KEY_ID_BYTES]


def current_key_id(purpose: str) -> str:
    return key_id(derive_key(purpose)).hex()


def encrypt(plaintext: bytes, purpose: str) -> bytes:
    key = derive_key(purpose)
    header = VERSION + key_id(key)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, purpose.encode() + header)


def blob_key_id(blob: bytes) -> str | None:
    """The key id a ciphertext names; None for values written before key ids."""
    if len(blob) > 1 + KEY_ID_BYTES + NONCE_BYTES and blob[:1] == VERSION:
        return blob[1:1 + KEY_ID_BYTES].hex()
    return None


def decrypt(blob: bytes, purpose: str) -> bytes:
    keys = derive_keys(purpose)
    named = blob_key_id(blob)
    if named is not None:
        for key in keys:
            if key_id(key).hex() == named:
                header, rest = blob[:1 + KEY_ID_BYTES], blob[1 + KEY_ID_BYTES:]
                try:
                    return AESGCM(key).decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], purpose.encode() + header)
                except InvalidTag:
                    break  # 1 in 256 old values start like a header by chance: try them as old values
    for key in keys:
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], purpose.encode())
        except InvalidTag:
            continue
    raise UndecryptableError(f"no configured secret decrypts this {purpose} value")


def is_current(blob: bytes, purpose: str) -> bool:
    """True when ``blob`` is encrypted under the current secret (nothing to re-encrypt)."""
    return blob_key_id(blob) == current_key_id(purpose) and _opens_with_current(blob, purpose)


def _opens_with_current(blob: bytes, purpose: str) -> bool:
    key = derive_key(purpose)
    header, rest = blob[:1 + KEY_ID_BYTES], blob[1 + KEY_ID_BYTES:]
    try:
        AESGCM(key).decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], purpose.encode() + header)
    except InvalidTag:
        return False
    return True


def encrypt_text(plaintext: str, purpose: str) -> str:
    return base64.b64encode(encrypt(plaintext.encode(), purpose)).decode()


def decrypt_text(blob: str, purpose: str) -> str:
    return decrypt(base64.b64decode(blob), purpose).decode()


def is_current_text(blob: str, purpose: str) -> bool:
    return is_current(base64.b64decode(blob), purpose)


# HMAC's padded keys (RFC 2104): the key XORed with 0x36 and with 0x5c, byte by byte.
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Hmac:
    """HMAC-SHA256 under one key (RFC 2104), its two padded key blocks hashed once. ``hmac.new``
    and ``hmac.digest`` ask OpenSSL for its HMAC implementation on every call, which (with the
    providers a running server has loaded) costs five times the MAC itself; copying two SHA-256
    states does not."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes):
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


_HMACS = Kept()  # bytes -> Hmac


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """``hmac.digest(key, message, "sha256")``, through an ``Hmac`` kept for each key in use (the
    derived keys of a few purposes, under the current and the previous secrets)."""
    mac = _HMACS.get(key)
    if mac is None:
        mac = _HMACS.keep(key, Hmac(key))
    return mac.digest(message)


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 for short secrets (6-digit codes) that a plain hash would not protect."""
    return hmac_sha256(derive_key(purpose), value.encode()).hex()


def keyed_hash_matches(stored: str, value: str, purpose: str) -> bool:
    """Whether ``stored`` is the keyed hash of ``value`` under the current or a previous secret."""
    return any(equal(stored, hmac_sha256(key, value.encode()).hex()) for key in derive_keys(purpose))


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
