"""OpenID Connect Back-Channel Logout through an outbox: one row per (client, session) is
queued in the transaction that ends the session, and the delivery loop POSTs the logout
tokens with retries and backoff, never inside the person's request.

The token is made at delivery time, each attempt with a fresh iat/exp and a new jti: a
token made at logout would have expired (two minutes) before a retry an hour later, and a
jti names one token, so a retry is a new token. An RP that saw the earlier one (its answer
was lost) logs out a session already gone, which is harmless; one that refused a reused
jti as a replay would turn a lost answer into a logout it keeps refusing.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

from flask import current_app
from joserfc import jwt
from sqlalchemy import or_, select, update

from .. import clock
from ..extensions import db
from ..models import AuthorizationCode, Client, OutboxLogout, SsoSession
from ..telemetry import metrics
from . import keys

log = logging.getLogger(__name__)
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_LIFETIME = 120
# A claim outlives one POST by this much, so two loops never send one logout twice.
CLAIM_MARGIN = 30


def logout_token(client_id: str, sid: str, sub: str) -> str:
    kid, key = keys.signing_key()
    now = clock.timestamp()
    claims = {
        "iss": current_app.config["ISSUER"],
        "sub": sub,
        "aud": client_id,
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "jti": secrets.token_urlsafe(16),
        "sid": sid,
        "events": {EVENT: {}},
    }
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "logout+jwt"}, claims, key)


def clients_of(session: SsoSession) -> list[Client]:
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


def queue(session: SsoSession) -> int:
    """Owe each of the session's clients a logout, in the caller's transaction; returns how many."""
    already = set(db.session.scalars(select(OutboxLogout.client_id).where(OutboxLogout.session_id == session.id)))
    queued = 0
    for client in clients_of(session):
        if client.id not in already:
            db.session.add(OutboxLogout(client_id=client.id, session_id=session.id, account_id=session.account_id))
            queued += 1
    return queued


def _claim_next(now: dt.datetime) -> OutboxLogout | None:
    """The next due logout, marked as ours until the POST is surely over; None when none is due."""
    unclaimed = or_(OutboxLogout.claimed_until.is_(None), OutboxLogout.claimed_until <= now)
    until = now + dt.timedelta(seconds=current_app.config["BACKCHANNEL_TIMEOUT"] + CLAIM_MARGIN)
    while True:
        row_id = db.session.scalar(
            select(OutboxLogout.id)
            .where(OutboxLogout.status == "queued", OutboxLogout.next_attempt_at <= now, unclaimed)
            .order_by(OutboxLogout.next_attempt_at, OutboxLogout.id)
            .limit(1)
        )
        if row_id is None:
            db.session.commit()
            return None
        # Only one loop's UPDATE matches; the others look for the next row.
        result = db.session.execute(
            update(OutboxLogout)
            .where(OutboxLogout.id == row_id, OutboxLogout.status == "queued", unclaimed)
            .values(claimed_until=until)
        )
        db.session.commit()
        if result.rowcount:
            return db.session.get(OutboxLogout, row_id)


def _post(uri: str, token: str) -> str | None:
    """None when the client took the logout, else why not."""
    body = urllib.parse.urlencode({"logout_token": token}).encode()
    request = urllib.request.Request(
        uri,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=current_app.config["BACKCHANNEL_TIMEOUT"]) as response:  # noqa: S310 (registered http(s) URI)
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc)) or type(exc).__name__


def _deliver(item: OutboxLogout) -> bool:
    cfg = current_app.config
    client = db.session.get(Client, item.client_id)
    if client is None or not client.backchannel_logout_uri:
        error = "the client is gone or no longer wants back-channel logout"
        item.attempts = max(item.attempts, cfg["BACKCHANNEL_MAX_ATTEMPTS"])
    else:
        error = _post(client.backchannel_logout_uri, logout_token(item.client_id, item.session_id, item.account_id))
        item.attempts += 1
    item.claimed_until = None
    if error is None:
        item.status = "delivered"
        item.delivered_at = clock.now()
        item.last_error = None
        metrics.BACKCHANNEL_DELIVERIES.labels("delivered").inc()
        log.info("back-channel logout %s delivered to client %s", item.id, item.client_id)
        return True
    item.last_error = error[:500]
    metrics.BACKCHANNEL_DELIVERIES.labels("failed").inc()
    if item.attempts >= cfg["BACKCHANNEL_MAX_ATTEMPTS"]:
        item.status = "abandoned"
        metrics.BACKCHANNEL_DELIVERIES.labels("abandoned").inc()
        log.error("back-channel logout %s to client %s abandoned after %s attempts: %s",
                  item.id, item.client_id, item.attempts, error)
    else:
        backoff = min(cfg["BACKCHANNEL_RETRY_BASE"] * 2 ** (item.attempts - 1), 3600)
        item.next_attempt_at = clock.now() + dt.timedelta(seconds=backoff)
        log.warning("back-channel logout %s to client %s failed (attempt %s), retry in %ss: %s",
                    item.id, item.client_id, item.attempts, backoff, error)
    return False


def deliver_due(limit: int = 100) -> tuple[int, int]:
    """One delivery round of back-channel logouts: (delivered, failed). Called by the
    delivery loop beside the mail; stops early after BACKCHANNEL_ROUND_SECONDS so that
    clients that hang leave time for mail."""
    budget_ends = time.monotonic() + current_app.config["BACKCHANNEL_ROUND_SECONDS"]
    delivered = failed = 0
    while delivered + failed < limit and time.monotonic() < budget_ends:
        item = _claim_next(clock.now())
        if item is None:
            break
        if _deliver(item):
            delivered += 1
        else:
            failed += 1
        db.session.commit()
    return delivered, failed
