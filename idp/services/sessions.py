"""Single sign-on sessions at the provider: created at login, ended at logout."""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from sqlalchemy import select

from .. import clock
from ..extensions import db
from ..models import Account, SsoSession
from . import audit, backchannel, tokens


def start(account: Account, amr: list[str], *, ip: str | None, user_agent: str | None) -> SsoSession:
    now = clock.now()
    session = SsoSession(
        id=secrets.token_urlsafe(32),
        account_id=account.id,
        auth_time=now.replace(microsecond=0),
        amr=amr,
        expires_at=now + dt.timedelta(seconds=current_app.config["SESSION_LIFETIME"]),
        ip=ip,
        user_agent=(user_agent or "")[:300],
    )
    db.session.add(session)
    audit.record("login.success", actor=account.id, account=account, ip=ip, sid_prefix=session.id[:8])
    return session


def sign_in(account: Account, amr: list[str], *, previous: SsoSession | None, ip: str | None,
            user_agent: str | None) -> SsoSession:
    """A completed sign-in: the session this browser had before ends (prompt=login, another
    account), a new one starts; both are audited."""
    if previous is not None:
        end(previous, ip=ip)
    return start(account, amr, ip=ip, user_agent=user_agent)


def get_active(sid: str | None) -> SsoSession | None:
    if not sid:
        return None
    session = db.session.get(SsoSession, sid)
    if session is None or not session.active(clock.now()):
        return None
    if session.account.disabled_at is not None:
        return None
    return session


def end(session: SsoSession, *, ip: str | None, actor: str | None = None) -> None:
    """End the session; its clients are owed a back-channel logout from the same commit."""
    session.ended_at = clock.now()
    # The session row first: a token request racing this end locks it before it saves a token
    # of the session (tokens.mind_ended_session), so either it waits for this end or this end
    # waits for its token, and then ends it below.
    db.session.flush()
    backchannel.queue(session)
    tokens.end_session_tokens(session.id)
    audit.record("logout", actor=actor or session.account_id, account=session.account, ip=ip)


def end_all_for(account: Account, *, except_sid: str | None = None, notify: bool = False) -> int:
    """End the account's sessions (but ``except_sid``); with ``notify`` the clients that
    want back-channel logout are owed one, queued in the caller's transaction."""
    query = select(SsoSession).where(SsoSession.account_id == account.id, SsoSession.ended_at.is_(None))
    if except_sid:
        query = query.where(SsoSession.id != except_sid)
    ended = list(db.session.scalars(query))
    now = clock.now()
    for session in ended:
        session.ended_at = now
    db.session.flush()  # the session rows before their tokens, as in end()
    for session in ended:
        tokens.end_session_tokens(session.id)
    if notify:
        for session in ended:
            backchannel.queue(session)
    return len(ended)

