"""Pushed authorization requests (RFC 9126) kept in the database, so that any instance
redeems the request_uri another handed out: once, and only before it expires."""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from sqlalchemy import update

from .. import clock
from ..extensions import db
from ..models import PushedAuthorizationRequest
from ..unit_of_work import kept
from .crypto import token_hash

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
MAX_REQUEST_URI_LENGTH = 200


def push(client_id: str, params: dict) -> tuple[str, int]:
    """Keep ``params`` for ``client_id``; the request_uri that stands for them and its lifetime."""
    lifetime = current_app.config["PAR_LIFETIME"]
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    db.session.add(PushedAuthorizationRequest(
        id=token_hash(request_uri), client_id=client_id, params=params,
        expires_at=clock.now() + dt.timedelta(seconds=lifetime)))
    return request_uri, lifetime


def redeem(request_uri, client_id: str) -> dict | None:
    """The parameters ``request_uri`` stands for, if it is this client's, unexpired and
    unused; it is used up in one conditional UPDATE (of two racing requests one wins),
    committed at once: spent whatever becomes of the authorization."""
    if not isinstance(request_uri, str) or len(request_uri) > MAX_REQUEST_URI_LENGTH:
        return None
    row = db.session.get(PushedAuthorizationRequest, token_hash(request_uri))
    now = clock.now()
    if row is None or row.client_id != client_id or row.expires_at <= now or row.used_at is not None:
        return None
    with kept():
        claimed = db.session.execute(
            update(PushedAuthorizationRequest)
            .where(PushedAuthorizationRequest.id == row.id, PushedAuthorizationRequest.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
    return dict(row.params) if claimed else None
