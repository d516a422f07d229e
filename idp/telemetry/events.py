"""A security event leaves the process twice besides the audit table: as a log line and as a count."""

from __future__ import annotations

from . import logs, metrics


def security_event(event) -> None:
    """``event`` is an AuditEvent just added to the session (counted when recorded, before the commit)."""
    metrics.security_event(event.action, event.outcome)
    logs.security_event(action=event.action, outcome=event.outcome, actor=event.actor, subject=event.subject,
                        ip=event.ip, reason=event.reason)
