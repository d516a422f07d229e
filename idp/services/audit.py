"""Writing and reading the audit trail. The application only ever appends to it."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from .. import clock
from ..extensions import db
from ..models import Account, AuditEvent
from ..telemetry import events
from ..unit_of_work import after_commit, execute

_INSERT = insert(AuditEvent.__table__)


def record(
    action: str,
    *,
    actor: str = "anonymous",
    subject: str | None = None,
    account: Account | None = None,
    outcome: str = "success",
    ip: str | None = None,
    reason: str | None = None,
    **detail,
) -> None:
    """Append an event in the current transaction: one INSERT at once (no ORM object to
    flush, nothing read back), committed (and logged and counted) when the caller commits."""
    subject = subject if subject is not None else (account.email if account else None)
    execute(_INSERT, {"at": clock.now(), "actor": actor, "action": action, "subject": subject,
                      "account_id": account.id if account else None, "outcome": outcome, "ip": ip,
                      "reason": reason, "detail": {k: v for k, v in detail.items() if v is not None}})
    # Logged and counted once it is written: a rolled-back request's events never were.
    facts = {"action": action, "outcome": outcome, "actor": actor, "subject": subject, "ip": ip, "reason": reason}
    after_commit(lambda: events.security_event(**facts))


def recent(subject: str | None = None, limit: int = 50) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if subject:
        query = query.where(func.lower(AuditEvent.subject) == subject.strip().lower())
    return list(db.session.scalars(query))


def as_dict(event: AuditEvent) -> dict:
    return {
        "at": event.at.isoformat() + "Z",
        "actor": event.actor,
        "action": event.action,
        "subject": event.subject,
        "outcome": event.outcome,
        "reason": event.reason,
        "ip": event.ip,
    }
