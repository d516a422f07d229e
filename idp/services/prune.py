"""Deleting what has expired, a batch of rows per transaction, so no table is locked for long.

What stays although it looks old, and why:
- e-mail codes sent in the last hour: they count towards EMAIL_CODE_MAX_PER_HOUR (so their
  flows stay too, which would take the codes with them);
- authorization codes until they expire (a second redemption revokes what the first issued)
  and while their SSO session lasts (back-channel logout finds the session's clients by them);
- a token family (one grant_id) until no member's access or refresh token can still be used:
  presenting a rotated-away refresh token revokes the family, so the used rows must stay;
- a grant while any of its tokens or its code is kept (each use of a token reads its grant);
- sign-in sources while locked or within LOCKOUT_MEMORY of their last failure (locks grow);
- the audit trail, always.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from flask import current_app
from sqlalchemy import and_, delete, exists, func, or_, select, text

from .. import clock
from ..extensions import db
from ..models import (
    AuthorizationCode,
    EmailCode,
    Flow,
    Grant,
    OutboxLogout,
    OutboxMail,
    PushedAuthorizationRequest,
    RevokedToken,
    SignInSource,
    SsoSession,
    Token,
    UsedCaptcha,
    UsedClientAssertion,
    UsedDpopProof,
)
from . import smart_lockout
from .tokens import locked_in_id_order

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: "idp prune" as a number, shared by every instance.
ADVISORY_LOCK_KEY = 0x1D9_9A0E
EMAIL_CODE_COUNT_WINDOW = dt.timedelta(hours=1)  # email_codes.issue counts the codes of the last hour


def _in_batches(id_column, where, batch_size: int) -> int:
    """Delete the rows matching ``where``, ``batch_size`` ids per DELETE and commit. Each
    batch's rows are locked in the order of their ids, as an end of several sessions or a
    revocation of several grants takes them: in the order of the DELETE's plan, each could
    hold a row the other waits for."""
    table = id_column.class_
    total = 0
    while True:
        ids = list(db.session.scalars(select(id_column).where(where).order_by(id_column).limit(batch_size)))
        if not ids:
            return total
        db.session.execute(delete(table).where(locked_in_id_order(id_column, id_column.in_(ids), deleting=True))
                           .execution_options(synchronize_session=False))
        db.session.commit()
        total += len(ids)
        if len(ids) < batch_size:
            return total


def _dead_token_families(now: dt.datetime, batch_size: int) -> int:
    """Delete token families (by grant_id) none of whose members can still be used."""
    total = 0
    after = ""
    while True:
        # Families with at least one member whose refresh lifetime is over, in grant_id order.
        grants = list(
            db.session.scalars(
                select(Token.grant_id)
                .where(Token.grant_id > after, or_(Token.refresh_expires_at.is_(None), Token.refresh_expires_at <= now))
                .group_by(Token.grant_id)
                .order_by(Token.grant_id)
                .limit(batch_size)
            )
        )
        if not grants:
            return total
        after = grants[-1]
        rows = db.session.execute(
            select(Token.grant_id, Token.issued_at, Token.expires_in, Token.refresh_expires_at).where(
                Token.grant_id.in_(grants)
            )
        ).all()
        alive = {
            row.grant_id
            for row in rows
            if row.issued_at + dt.timedelta(seconds=row.expires_in) > now
            or (row.refresh_expires_at is not None and row.refresh_expires_at > now)
        }
        dead = [g for g in grants if g not in alive]
        if dead:
            # Their rows locked in the order of their ids, as a revocation of several tokens takes
            # them (a person's, whose dead tokens are not revoked yet): in the order of their
            # families, each could hold a row the other waits for.
            result = db.session.execute(
                delete(Token).where(locked_in_id_order(Token.id, Token.grant_id.in_(dead), deleting=True))
                .execution_options(synchronize_session=False)
            )
            total += result.rowcount
        db.session.commit()
        if len(grants) < batch_size:
            return total


def prune(now: dt.datetime | None = None, batch_size: int | None = None, stop=None) -> dict[str, int]:
    """Delete what has expired; returns how many rows of each kind went. Once ``stop`` (a
    threading.Event) is set, no further kind is begun: the worker running the loop is ending."""
    now = now or clock.now()
    batch = batch_size or current_app.config["PRUNE_BATCH_SIZE"]
    recent_codes = now - EMAIL_CODE_COUNT_WINDOW
    outbox_before = now - dt.timedelta(seconds=current_app.config["OUTBOX_RETENTION"])
    active_session = exists().where(
        SsoSession.id == AuthorizationCode.session_id, SsoSession.ended_at.is_(None), SsoSession.expires_at > now
    )
    steps: list[tuple[str, Callable[[], int]]] = [
        ("email_codes", lambda: _in_batches(
            EmailCode.id, and_(EmailCode.expires_at <= now, EmailCode.created_at <= recent_codes), batch)),
        ("flows", lambda: _in_batches(
            Flow.id,
            and_(Flow.expires_at <= now, ~exists().where(EmailCode.flow_id == Flow.id, EmailCode.created_at > recent_codes)),
            batch)),
        ("sessions", lambda: _in_batches(SsoSession.id, or_(SsoSession.ended_at.is_not(None), SsoSession.expires_at <= now), batch)),
        ("authorization_codes", lambda: _in_batches(
            AuthorizationCode.id, and_(AuthorizationCode.expires_at <= now, ~active_session), batch)),
        ("tokens", lambda: _dead_token_families(now, batch)),
        ("grants", lambda: _in_batches(
            Grant.id,
            and_(~exists().where(Token.grant_id == Grant.id), ~exists().where(AuthorizationCode.grant_id == Grant.id)),
            batch)),
        ("revoked_tokens", lambda: _in_batches(RevokedToken.token_hash, RevokedToken.expires_at <= now, batch)),
        ("used_captchas", lambda: _in_batches(UsedCaptcha.signature, UsedCaptcha.expires_at <= now, batch)),
        ("used_client_assertions", lambda: _in_batches(
            UsedClientAssertion.id, UsedClientAssertion.expires_at <= now, batch)),
        ("used_dpop_proofs", lambda: _in_batches(UsedDpopProof.id, UsedDpopProof.expires_at <= now, batch)),
        ("pushed_authorization_requests", lambda: _in_batches(
            PushedAuthorizationRequest.id, PushedAuthorizationRequest.expires_at <= now, batch)),
        ("sign_in_sources", lambda: _in_batches(SignInSource.id, smart_lockout.prunable(now), batch)),
        ("outbox", lambda: _in_batches(
            OutboxMail.id,
            and_(OutboxMail.status.in_(("sent", "abandoned")), func.coalesce(OutboxMail.sent_at, OutboxMail.created_at) <= outbox_before),
            batch)),
        ("backchannel_outbox", lambda: _in_batches(
            OutboxLogout.id,
            and_(OutboxLogout.status.in_(("delivered", "abandoned")),
                 func.coalesce(OutboxLogout.delivered_at, OutboxLogout.created_at) <= outbox_before),
            batch)),
    ]
    counts = {}
    for name, step in steps:
        if stop is not None and stop.is_set():
            break
        try:
            counts[name] = step()
        except Exception:
            db.session.rollback()
            raise
    return counts


def prune_once_everywhere(now: dt.datetime | None = None, stop=None) -> dict[str, int] | None:
    """``prune()`` unless another instance is pruning right now (PostgreSQL advisory lock);
    None when it was. On SQLite there is one machine, so no lock is needed."""
    if db.engine.dialect.name != "postgresql":
        return prune(now, stop=stop)
    with db.engine.connect() as lock_connection:
        got = lock_connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}).scalar()
        lock_connection.commit()
        if not got:
            log.info("prune: another instance is pruning, skipped")
            return None
        try:
            return prune(now, stop=stop)
        finally:
            lock_connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
            lock_connection.commit()


def prune_forever(every: int, stop) -> None:
    """Prune every ``every`` seconds until ``stop`` (a threading.Event) is set: the prune loop of
    `idp serve` and of `idp db prune --every`."""
    while not stop.is_set():
        try:
            counts = prune_once_everywhere(stop=stop)
            if counts is not None:
                log.info("pruned %s", ", ".join(f"{k} {v}" for k, v in counts.items()), extra={"pruned": counts})
        except Exception:  # a database hiccup must not end the loop; the next round tries again
            log.exception("prune round failed")
            db.session.rollback()
        finally:
            db.session.remove()
        stop.wait(every)
