"""F9: what support staff do for people who are locked out. The console and the CLI call
these same functions, so their effects and audit entries are the same; ``ACTIONS`` lists
them once for both."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, union

from .. import clock
from ..errors import InvalidInput
from ..extensions import db
from ..models import Account, Administration, AuditEvent, ConnectorUser, Invitation, Membership
from . import accounts, audit, connectors, event_names, mailer, passkeys, sessions, tokens

PAGE_SIZE = 20
EVENTS_PAGE_SIZE = 25
# The periods the console's event list can be limited to: (label, days; None for all).
PERIODS = {
    "all": (_l("All time"), None),
    "day": (_l("Last 24 hours"), 1),
    "week": (_l("Last 7 days"), 7),
    "month": (_l("Last 30 days"), 30),
}


def require_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("Give a reason for this action."))
    if len(reason) > 500:
        raise InvalidInput(_l("Keep the reason under 500 characters."))
    return reason


def search(q: str, page: int = 1) -> tuple[list[Account], bool]:
    """Accounts whose e-mail or name contains ``q``, or who own a connector user whose
    username contains it. Returns one page and whether there is a next one."""
    q = (q or "").strip().lower()[:100]
    if len(q) < 2:
        return [], False
    like = f"%{q.replace('%', '').replace('_', '')}%"
    # One indexed lookup each (the trigram indexes on PostgreSQL), joined: an OR across them
    # would read every account.
    matches = union(
        select(Account.id).where(func.lower(Account.email).like(like)),
        select(Account.id).where(func.lower(Account.name).like(like)),
        select(Membership.account_id)
        .join(ConnectorUser, ConnectorUser.administration_id == Membership.administration_id)
        .where(func.lower(ConnectorUser.username).like(like)),
    )
    query = (
        select(Account)
        .where(Account.id.in_(matches))
        .order_by(Account.email)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    )
    found = list(db.session.scalars(query))
    return found[:PAGE_SIZE], len(found) > PAGE_SIZE


def _owned_connectors(account: Account) -> list[ConnectorUser]:
    owned = [m.administration for m in account.memberships if m.role == "owner"]
    return [a.connector for a in owned if a.connector is not None]


def overview(account: Account) -> dict:
    owned_connectors = _owned_connectors(account)
    return {
        "status": accounts.status(account),
        "passkeys": passkeys.count(account),
        "connectors": owned_connectors,
        "locked_connectors": {c.id for c in owned_connectors if connectors.is_locked(c)},
        "invitations": list(db.session.scalars(
            select(Invitation).where(func.lower(Invitation.email) == account.email.lower()).order_by(Invitation.created_at.desc())
        )),
        "now": clock.now(),
    }


def events(account: Account, *, kind: str | None = None, period: str | None = None,
           page: int = 1) -> tuple[list[AuditEvent], bool]:
    """One page of the events of an account and its connector users, newest first, of one
    kind (event_names.KINDS) and within one period (PERIODS) where given; and whether there
    is a next page. Unknown kinds and periods are no filter."""
    subjects = [account.email, *(c.username for c in _owned_connectors(account))]
    query = select(AuditEvent).where(or_(AuditEvent.account_id == account.id, AuditEvent.subject.in_(subjects)))
    if kind in event_names.KINDS:
        query = query.where(AuditEvent.action.in_(event_names.actions_of(kind)))
    days = PERIODS.get(period or "all", PERIODS["all"])[1]
    if days is not None:
        query = query.where(AuditEvent.at >= clock.now() - dt.timedelta(days=days))
    page = max(page, 1)
    found = list(db.session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * EVENTS_PAGE_SIZE).limit(EVENTS_PAGE_SIZE + 1)
    ))
    return found[:EVENTS_PAGE_SIZE], len(found) > EVENTS_PAGE_SIZE


def unlock(account: Account, *, actor: str, ip: str | None, reason: str | None) -> None:
    """The account's lock and every locked source of its address end. The console always asks
    a reason (web/support.py); the command line takes one when given (CONTRACT section 3)."""
    accounts.unlock(account, actor=actor, ip=ip, reason=require_reason(reason) if (reason or "").strip() else None)


def reset_2fa(account: Account, *, actor: str, ip: str | None, reason: str) -> None:
    """The old secret and every passkey stop at once; the next sign-in sets up two-step
    verification again; the person is told."""
    reason = require_reason(reason)
    removed = accounts.clear_second_factors(account)
    audit.record("support.reset_2fa", actor=actor, account=account, ip=ip, reason=reason, passkeys_removed=removed)
    mailer.queue(account.email, "totp_cleared", None, name=account.name, email=account.email,
                 passkeys_removed=removed)


def disable(account: Account, *, actor: str, ip: str | None, reason: str) -> None:
    """Sign-in refused; every session ends and every token is revoked."""
    reason = require_reason(reason)
    if account.disabled_at is None:
        account.disabled_at = clock.now()
    ended = sessions.end_all_for(account, notify=True)
    revoked = tokens.revoke_for_account(account)
    audit.record("support.disable", actor=actor, account=account, ip=ip, reason=reason, sessions_ended=ended,
                 tokens_revoked=revoked)


def enable(account: Account, *, actor: str, ip: str | None, reason: str) -> None:
    reason = require_reason(reason)
    account.disabled_at = None
    audit.record("support.enable", actor=actor, account=account, ip=ip, reason=reason)


def release_reset_throttle(connector: ConnectorUser, *, actor: str, ip: str | None, reason: str | None) -> None:
    connector.last_reset_at = None
    audit.record("support.release_reset_throttle", actor=actor, subject=connector.username, ip=ip,
                 reason=(reason or "").strip() or None, administration=connector.administration_id)


def find_connector(username: str) -> ConnectorUser | None:
    username = (username or "").strip().upper()
    return db.session.scalar(select(ConnectorUser).where(ConnectorUser.username == username))


def get_connector(connector_id: int) -> ConnectorUser | None:
    return db.session.get(ConnectorUser, connector_id)


def get_account(account_id: str) -> Account | None:
    if not isinstance(account_id, str) or len(account_id) > 64:
        return None
    return db.session.get(Account, account_id)


def administration_name(administration_id: str) -> str:
    administration = db.session.get(Administration, administration_id)
    return administration.name if administration else administration_id


@dataclass(frozen=True)
class Action:
    """One thing support staff do to one subject. ``perform(subject, actor=, ip=, reason=)``
    writes the audit entry ``audit_action``; the caller commits."""

    name: str
    perform: Callable[..., None]
    # "account" (found by e-mail) or "connector" (found by username)
    subject: str
    reason_required: bool
    # the console asks for a confirmation first
    destructive: bool
    audit_action: str
    summary: str


ACTIONS: dict[str, Action] = {a.name: a for a in (
    # The reason stays optional on the command line: CONTRACT section 3 (`idp support unlock EMAIL
    # [--reason TEXT]`) is what operators' scripts rely on; the console asks one for every action.
    Action("unlock", unlock, "account", False, False, "account.unlocked",
           "End a lockout (also one that only support may end)."),
    Action("unlock-connector", connectors.unlock, "connector", False, False, "connector.unlocked",
           "End a connector user's lockouts (of every client and address)."),
    Action("release-reset-throttle", release_reset_throttle, "connector", False, False,
           "support.release_reset_throttle", "Allow a connector user another password reset within 24 hours."),
    Action("reset-2fa", reset_2fa, "account", True, True, "support.reset_2fa",
           "Switch two-step verification off (the authenticator app and every passkey); the next sign-in sets it "
           "up again."),
    Action("disable", disable, "account", True, True, "support.disable",
           "Refuse sign-in, end every session and revoke every token."),
    Action("enable", enable, "account", True, False, "support.enable", "Allow sign-in again."),
)}


def find_subject(kind: str, name: str) -> Account | ConnectorUser | None:
    """The account with e-mail ``name`` or the connector user with username ``name``
    (a typed ``@domain`` is ignored)."""
    if kind == "account":
        return accounts.find_by_email((name or "").strip())
    return find_connector((name or "").split("@")[0])
