"""How far delivery is behind, per outbox (mail, back-channel logouts): read at each metrics
scrape, so two cheap indexed queries each."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import clock
from ..extensions import db
from ..models import OutboxLogout, OutboxMail

# The outboxes by the name their gauges carry.
OUTBOXES = {"outbox": OutboxMail, "backchannel": OutboxLogout}


def backlog(model=OutboxMail) -> tuple[int, float]:
    """(rows still queued, seconds since the oldest row that is due now was queued)."""
    now = clock.now()
    queued = db.session.scalar(select(func.count()).select_from(model).where(model.status == "queued"))
    oldest = db.session.scalar(
        select(func.min(model.created_at)).where(model.status == "queued", model.next_attempt_at <= now)
    )
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return int(queued or 0), age


def backlogs() -> dict[str, tuple[int, float]] | None:
    """Every outbox's backlog by its gauge name; None when the database is away (the failed
    transaction is rolled back)."""
    try:
        return {name: backlog(model) for name, model in OUTBOXES.items()}
    except SQLAlchemyError:
        db.session.rollback()
        return None
