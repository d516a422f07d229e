"""The audit trail: every security event and staff action, append-only."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import created_at


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = created_at()
    actor: Mapped[str] = mapped_column(String(200), nullable=False)  # account id, cli:<user>, client:<id>, anonymous
    action: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    subject: Mapped[str | None] = mapped_column(String(320), index=True)  # the e-mail (or username) concerned
    account_id: Mapped[str | None] = mapped_column(String(32), index=True)
    outcome: Mapped[str] = mapped_column(String(20), default="success", nullable=False)
    ip: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target):
    raise RuntimeError("the audit trail is append-only")
