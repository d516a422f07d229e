"""A security event leaves the process twice besides the audit table: as a log line and as a count."""

from __future__ import annotations

from . import logs, metrics


def security_event(*, action: str, outcome: str, actor: str | None, subject: str | None, ip: str | None,
                   reason: str | None) -> None:
    """An audit event that was just committed."""
    metrics.security_event(action, outcome)
    logs.security_event(action=action, outcome=outcome, actor=actor, subject=subject, ip=ip, reason=reason)
