"""How far mail delivery is behind: read at each metrics scrape, so two cheap indexed queries."""

from __future__ import annotations

from sqlalchemy import func, select

from .. import clock
from ..extensions import db
from ..models import OutboxMail


def backlog() -> tuple[int, float]:
    """(mails still queued, seconds since the oldest mail that is due now was queued)."""
    now = clock.now()
    queued = db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == "queued"))
    oldest = db.session.scalar(
        select(func.min(OutboxMail.created_at)).where(OutboxMail.status == "queued", OutboxMail.next_attempt_at <= now)
    )
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return int(queued or 0), age
