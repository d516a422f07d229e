"""Access tokens for client credentials: self-contained and MAC-protected (or, for a client
registered for JWT access tokens, signed: RFC 9068), so issuing one costs no database write.
Revoking one records its hash until it would expire."""

from __future__ import annotations

import base64
import hmac
import json
from json.encoder import encode_basestring_ascii as _json_string

from sqlalchemy import bindparam, select

from .. import clock, unit_of_work
from ..random_bytes import token_bytes
from ..extensions import db
from ..models import RevokedToken
from ..models.oauth import IssuedToken
from ..services.crypto import derive_key, derive_keys, hmac_sha256, token_hash
from . import jwt_access_tokens
from .clients import query_client

PREFIX = "mt1."
# How every JWT starts: the base64url of '{"'.
JWT_PREFIX = "eyJ"
MAC_PURPOSE = "machine-token"
_REVOKED = select(RevokedToken.token_hash).where(RevokedToken.token_hash == bindparam("hash"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(body: str, key: bytes | None = None) -> str:
    return _b64(hmac_sha256(key or derive_key(MAC_PURPOSE), body.encode()))


def _payload_json(payload: dict) -> str:
    """``json.dumps(payload, separators=(",", ":"))``, written out for a payload of strings and
    integers (every token's), which is most of what issuing one costs otherwise."""
    parts = []
    for key, value in payload.items():
        if type(value) is str:
            parts.append(f'"{key}":{_json_string(value)}')
        elif type(value) is int:
            parts.append(f'"{key}":{value}')
        else:
            return json.dumps(payload, separators=(",", ":"))
    return "{" + ",".join(parts) + "}"


def issue(client_id: str, scope: str, expires_in: int, confirmation: dict | None = None) -> str:
    """A token for ``client_id``; with ``confirmation`` (``{"jkt": ...}``) bound to that DPoP key."""
    now = clock.timestamp()
    payload = {"c": client_id, "s": scope, "i": now, "e": now + expires_in, "j": _b64(token_bytes(16))}
    if confirmation:
        payload["k"] = confirmation["jkt"]
    body = PREFIX + _b64(_payload_json(payload).encode())
    return body + "." + _mac(body)


class MachineToken(IssuedToken):
    """A verified client-credentials token, shaped like a stored Token for Authlib."""

    account = None
    account_id = None
    refresh_token_hash = None
    grant_id = None

    def __init__(self, value: str, payload: dict):
        self.value = value
        self.client_id = payload["c"]
        self.scope = payload["s"]
        self.issued_at = clock.from_timestamp(payload["i"])
        self.expires_in = payload["e"] - payload["i"]
        self.dpop_jkt = payload.get("k")
        self.revoked = False

    @property
    def client(self):
        return query_client(self.client_id)

    def is_revoked(self):
        return self.revoked or self.client is None

    def is_refresh_usable(self):
        return False

    def get_user(self):
        return None

    def get_client(self):
        return self.client


def verify(value: str) -> MachineToken | None:
    if not value.startswith(PREFIX) or value.count(".") != 2:
        return None
    body, _, mac = value.rpartition(".")
    # Tokens made before a secret rotation verify with the previous secret until they expire.
    if not any(hmac.compare_digest(mac, _mac(body, key)) for key in derive_keys(MAC_PURPOSE)):
        return None
    try:
        payload = json.loads(_unb64(body[len(PREFIX):]))
        token = MachineToken(value, payload)
    except (ValueError, KeyError, TypeError):
        return None
    return _mind_revocation(token)


def verify_jwt(value: str) -> MachineToken | None:
    """A client-credentials JWT access token: signed by us, its subject the client itself
    (RFC 9068 section 2.2). A person's or a connector user's JWT has a stored row instead."""
    claims = jwt_access_tokens.verify(value)
    if claims is None or claims.get("sub") != claims.get("client_id"):
        return None
    try:
        token = MachineToken(value, {"c": claims["client_id"], "s": claims.get("scope", ""), "i": claims["iat"],
                                     "e": claims["exp"], "k": (claims.get("cnf") or {}).get("jkt")})
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return _mind_revocation(token)


def _mind_revocation(token: MachineToken) -> MachineToken:
    token.revoked = unit_of_work.read_scalar(_REVOKED, {"hash": token_hash(token.value)}) is not None
    return token


def revoke(token: MachineToken) -> None:
    if not token.revoked:
        db.session.add(RevokedToken(token_hash=token_hash(token.value), expires_at=token.expires_at))
        token.revoked = True
