"""Mail and back-channel logouts waiting to be delivered, written in the transaction that causes them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import created_at


class Delivery:
    """What every outbox row keeps of its delivery: its status, the tries so far, when the next
    is due, which delivery loop holds it for now, and why the last try failed."""

    status: Mapped[str] = mapped_column(String(12), default="queued", nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[dt.datetime] = created_at()
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = created_at()


class OutboxMail(db.Model, Delivery):
    """A mail; status queued, sent or abandoned."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    html: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class OutboxLogout(db.Model, Delivery):
    """A back-channel logout owed to one client for one ended session, written in the
    transaction that ends the session; status queued, delivered or abandoned. It carries the
    sid and sub itself: ended sessions are pruned, and the token is made only when it is
    delivered."""

    __tablename__ = "backchannel_outbox"
    __table_args__ = (UniqueConstraint("client_id", "session_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    session_id: Mapped[str] = mapped_column(String(64), nullable=False)  # the sid
    account_id: Mapped[str] = mapped_column(String(32), nullable=False)  # the sub
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
