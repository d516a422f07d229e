"""OpenID Connect Back-Channel Logout: tell each client of an ended session, server to server."""

from __future__ import annotations

import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request

from flask import current_app
from joserfc import jwt
from sqlalchemy import select

from .. import clock
from ..extensions import db
from ..models import AuthorizationCode, Client, Session
from . import keys

log = logging.getLogger(__name__)
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TIMEOUT = 3


def logout_token(client: Client, session: Session) -> str:
    kid, key = keys.signing_key()
    now = clock.timestamp()
    claims = {
        "iss": current_app.config["ISSUER"],
        "sub": session.account_id,
        "aud": client.id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "sid": session.id,
        "events": {EVENT: {}},
    }
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "logout+jwt"}, claims, key)


def clients_of(session: Session) -> list[Client]:
    """The clients this session signed in to that want back-channel logout."""
    return list(
        db.session.scalars(
            select(Client)
            .where(
                Client.id.in_(select(AuthorizationCode.client_id).where(AuthorizationCode.session_id == session.id)),
                Client.backchannel_logout_uri.is_not(None),
            )
            .order_by(Client.id)
        )
    )


def notify(session: Session) -> dict[str, bool]:
    """POST a logout token to each client; returns client id -> delivered."""
    results = {}
    for client in clients_of(session):
        body = urllib.parse.urlencode({"logout_token": logout_token(client, session)}).encode()
        request = urllib.request.Request(
            client.backchannel_logout_uri,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 (registered https/http URI)
                results[client.id] = 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("back-channel logout to client %s failed: %s", client.id, exc)
            results[client.id] = False
    return results
