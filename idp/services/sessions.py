"""Single sign-on sessions at the provider: created at login, seen, listed and ended (at
logout, or by the person in the security centre)."""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from .. import clock, unit_of_work
from ..errors import SessionNotFound
from ..extensions import db
from ..models import Account, SsoSession
from . import audit, backchannel, tokens


_INSERT = insert(SsoSession.__table__)


def start(account: Account, amr: list[str], *, ip: str | None, user_agent: str | None) -> SsoSession:
    """A new session, written with one INSERT at once; the object returned is the row as the
    ORM would hold it after a flush (persistent, nothing pending): the unit of work's flush of a
    new object costs several times the statement."""
    now = clock.now()
    values = {
        "id": secrets.token_urlsafe(32),
        "account_id": account.id,
        "auth_time": now.replace(microsecond=0),
        "amr": list(amr),
        "created_at": now,
        "expires_at": now + dt.timedelta(seconds=current_app.config["SESSION_LIFETIME"]),
        "ended_at": None,
        "ip": ip,
        "user_agent": (user_agent or "")[:300],
        "last_seen_at": now,
    }
    unit_of_work.execute(_INSERT, values)
    session = SsoSession(**values)
    make_transient_to_detached(session)
    db.session.add(session)
    audit.record("login.success", actor=account.id, account=account, ip=ip, sid_prefix=session.id[:8],
                 amr=list(amr))
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


def signed_in_within(session: SsoSession | None, seconds: int) -> bool:
    """Whether the session's sign-in happened at most ``seconds`` ago (a fresh sign-in, which
    support's console and adding a passkey ask for)."""
    return session is not None and (clock.now() - session.auth_time).total_seconds() <= seconds


def seen(session: SsoSession) -> None:
    """The browser came back with this session: its "last seen" moves, but at most once per
    SESSION_SEEN_INTERVAL, so most requests write nothing. Written after the request, in a
    transaction of its own (``unit_of_work.write_after``): in the request's it would lock this
    session's row before any other, while an end of the account's sessions (a password change,
    a disabling, "end my other sessions") takes them all in the order of their ids. On
    PostgreSQL a row that another transaction holds meanwhile is left as it is (the browser comes
    back); on SQLite the write takes its turn as any other (``sqlite_writers``), a second turn for
    the request whose "last seen" is due."""
    now = clock.now()
    last = session.last_seen_at
    if last is None or (now - last).total_seconds() >= current_app.config["SESSION_SEEN_INTERVAL"]:
        set_committed_value(session, "last_seen_at", now)  # what this request shows; nothing flushed
        unit_of_work.write_after(_SEEN, {"sid": session.id, "now": now})


# The session's row, unless another transaction holds it, it was ended or it was seen later.
_SEEN = (
    update(SsoSession)
    .where(SsoSession.id == select(SsoSession.id).where(
        SsoSession.id == bindparam("sid"), SsoSession.ended_at.is_(None),
        or_(SsoSession.last_seen_at.is_(None), SsoSession.last_seen_at < bindparam("now")),
    ).with_for_update(skip_locked=True).scalar_subquery())
    .values(last_seen_at=bindparam("now"))
)


def end(session: SsoSession, *, ip: str | None, actor: str | None = None, action: str = "logout") -> None:
    """End the session; its clients are owed a back-channel logout from the same commit.
    ``action`` names the event in the audit trail (a logout, or a session ended from the
    security centre)."""
    _end([session], ip=ip, actor=actor, action=action)


def _end(ended: list[SsoSession], *, ip: str | None, actor: str | None, action: str) -> None:
    """End the sessions (``end``), all of their rows before any of their tokens: the session
    rows in the order of their ids (the unit of work's flush, as in ``end_all_for``), then
    their tokens in one statement, in the order of theirs. One session at a time, an end of
    several would hold a session's tokens while it waited for another session, or a token of
    another, that an end of the account's sessions or a revocation held while it waited for
    one of the first."""
    now = clock.now()
    for session in ended:
        session.ended_at = now
    # The session rows first: a token request racing this end locks its session before it saves
    # a token of it (tokens.mind_ended_session), so either it waits for this end or this end
    # waits for its token, and then ends it below.
    db.session.flush()
    for session in ended:
        backchannel.queue(session)
    tokens.end_session_tokens(*(session.id for session in ended))
    for session in ended:
        audit.record(action, actor=actor or session.account_id, account=session.account, ip=ip,
                     sid_prefix=session.id[:8])


def active_for(account: Account) -> list[SsoSession]:
    """The account's sessions that are still running, the most recently seen first."""
    now = clock.now()
    rows = db.session.scalars(
        select(SsoSession).where(
            SsoSession.account_id == account.id, SsoSession.ended_at.is_(None), SsoSession.expires_at > now
        )
    )
    return sorted(rows, key=lambda s: (s.last_seen_at or s.created_at, s.created_at), reverse=True)


def end_own(account: Account, handle: str, *, current: SsoSession, ip: str | None) -> bool:
    """The person ends one of their own running sessions, named by its handle (another
    person's, an ended or an unknown one is not found). True when it was ``current``."""
    match = next((s for s in active_for(account) if isinstance(handle, str) and s.handle == handle), None)
    if match is None:
        raise SessionNotFound()
    end(match, ip=ip, actor=account.id, action="session.ended")
    return match.id == current.id


def end_others(account: Account, *, current: SsoSession, ip: str | None) -> int:
    """The person ends every running session but ``current``; returns how many ended."""
    others = [s for s in active_for(account) if s.id != current.id]
    _end(others, ip=ip, actor=account.id, action="session.ended")
    return len(others)


def end_all_for(account: Account, *, except_sid: str | None = None, notify: bool = False) -> int:
    """End the account's sessions (but ``except_sid``); with ``notify`` the clients that
    want back-channel logout are owed one, queued in the caller's transaction.

    Their tokens are left to the caller, which revokes every token of the account next
    (``tokens.revoke_for_account``): the grants first, then the tokens in the order of their
    ids, as a family's or an app's revocation takes them. Ending the sessions' tokens here
    would take tokens before grants, and a revocation of a family of theirs could hold the
    grant this one waits for while it waits for a token this one holds (a deadlock)."""
    # Running sessions only (active_for): an expired one is the prune's to delete (which locks
    # it), and an UPDATE of a row the prune deleted meanwhile would fail the change.
    ended = [session for session in active_for(account) if session.id != except_sid]
    now = clock.now()
    for session in ended:
        session.ended_at = now
    # The session rows before the tokens, as in end(): a token request racing this end minds
    # its session (tokens.mind_ended_session), so its token is committed before the caller
    # revokes the account's tokens, or it sees the session ended.
    db.session.flush()
    if notify:
        for session in ended:
            backchannel.queue(session)
    return len(ended)

