"""Issuing, finding and revoking tokens; families share a grant id."""

from __future__ import annotations

import datetime as dt
import logging

from authlib.common.security import generate_token
from flask import current_app, g
from sqlalchemy import select, update

from .. import clock
from ..extensions import db
from ..models import Account, AuthorizationCode, ConnectorUser, Token
from ..services import audit
from ..services.crypto import token_hash
from . import machine_tokens

# Scopes about a person: meaningless in a token that no person granted.
PERSONAL_SCOPES = {"openid", "profile", "email", "offline_access", "administrations"}

log = logging.getLogger(__name__)


def generate_bearer_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    """Authlib's token generator. People's tokens are opaque 256-bit values, with a refresh
    token where the client may refresh and `offline_access` was granted. Machine tokens
    (client credentials, connector users) carry no person's scopes and no refresh token;
    client-credentials tokens are self-contained."""
    expires_in = expires_in or current_app.config["ACCESS_TOKEN_LIFETIME"]
    machine = grant_type in ("client_credentials", "password")
    scope = client.get_allowed_scope(scope)
    if machine:
        scope = " ".join(s for s in (scope or "").split() if s not in PERSONAL_SCOPES)
    if grant_type == "client_credentials":
        access_token = machine_tokens.issue(client.get_client_id(), scope, expires_in)
    else:
        access_token = generate_token(43)
    token = {"token_type": "Bearer", "access_token": access_token, "expires_in": expires_in}
    if scope:
        token["scope"] = scope
    if machine or not include_refresh_token or not client.check_grant_type("refresh_token"):
        return token
    if grant_type == "refresh_token" or "offline_access" in (scope or "").split():
        token["refresh_token"] = generate_token(43)
    return token


def save_token(token: dict, request) -> Token:
    """Store a fresh token (hashes only). Codes start a family; refreshes continue it.
    Client-credentials tokens are self-contained and need no row."""
    if token["access_token"].startswith(machine_tokens.PREFIX):
        return None
    now = clock.now()
    code: AuthorizationCode | None = getattr(request, "authorization_code", None)
    previous: Token | None = getattr(request, "refresh_token", None)
    user = request.user
    row = Token(
        client_id=request.client.get_client_id(),
        account_id=user.id if isinstance(user, Account) else None,
        connector_id=user.id if isinstance(user, ConnectorUser) else None,
        access_token_hash=token_hash(token["access_token"]),
        refresh_token_hash=token_hash(token["refresh_token"]) if token.get("refresh_token") else None,
        scope=token.get("scope", ""),
        issued_at=now,
        expires_in=int(token["expires_in"]),
    )
    if row.refresh_token_hash:
        row.refresh_expires_at = now + dt.timedelta(seconds=current_app.config["REFRESH_TOKEN_LIFETIME"])
    if code is not None:
        row.grant_id = code.grant_id
        row.session_id = code.session_id
        row.auth_time = code.auth_time
        if row.refresh_token_hash:
            _end_earlier_connections(row)
    elif previous is not None:
        row.grant_id = previous.grant_id
        row.session_id = previous.session_id
        row.auth_time = previous.auth_time
    db.session.add(row)
    db.session.commit()
    return row


def _end_earlier_connections(row: Token) -> None:
    """One connection per application per login: a new offline grant ends the earlier ones."""
    db.session.execute(
        update(Token)
        .where(
            Token.account_id == row.account_id,
            Token.client_id == row.client_id,
            Token.grant_id != row.grant_id,
            Token.refresh_token_hash.is_not(None),
            Token.revoked_at.is_(None),
        )
        .values(revoked_at=clock.now())
    )


def find_access_token(value: str) -> Token | machine_tokens.MachineToken | None:
    if not isinstance(value, str) or not value or len(value) > 1024:
        return None
    if value.startswith(machine_tokens.PREFIX):
        return machine_tokens.verify(value)
    return db.session.scalar(select(Token).where(Token.access_token_hash == token_hash(value)))


def find_refresh_token(value: str) -> Token | None:
    if not isinstance(value, str) or not value or len(value) > 512:
        return None
    return db.session.scalar(select(Token).where(Token.refresh_token_hash == token_hash(value)))


def revoke_family(grant_id: str) -> int:
    return db.session.execute(
        update(Token).where(Token.grant_id == grant_id, Token.revoked_at.is_(None)).values(revoked_at=clock.now())
    ).rowcount


def revoke_for_account(account: Account) -> int:
    return db.session.execute(
        update(Token).where(Token.account_id == account.id, Token.revoked_at.is_(None)).values(revoked_at=clock.now())
    ).rowcount


def report_reuse(kind: str, row, client_id: str) -> None:
    """A spent code or refresh token came back: revoke what it issued and say so."""
    revoked = revoke_family(row.grant_id)
    account = db.session.get(Account, row.account_id) if row.account_id else None
    audit.record(
        f"{kind}.reuse_detected",
        actor=f"client:{client_id}",
        account=account,
        outcome="failure",
        ip=getattr(g, "remote_addr", None),
        revoked=revoked,
    )
    db.session.commit()
    log.warning("%s reuse for client %s: revoked %s tokens of grant %s", kind, client_id, revoked, row.grant_id)
