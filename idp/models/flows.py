"""Stored self-service flows and the e-mail codes they send."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import created_at, new_token


class Flow(db.Model):
    """One person's way through a multi-step flow (login, reset, invitation ...).

    The browser holds the id in its session cookie; the row holds the state.
    """

    __tablename__ = "flows"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_token)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    state: Mapped[str] = mapped_column(String(30), nullable=False)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    # SHA-256 of a single-use link that continues the flow in another browser (e.g. a
    # password link mailed to someone else); None for flows without one.
    link_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The WebAuthn challenge the flow's page asked for, after the state it was asked in ("<state>
    # <challenge>"); None once spent. A column of its own: the browser asks for it while the
    # person may be submitting the step, and neither write may undo the other's.
    challenge: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class EmailCode(db.Model):
    """A 6-digit code mailed to prove control of an address. Kept after use, so reuse is seen."""

    __tablename__ = "email_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The address the code went to; the account, where there is one already.
    email: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    flow_id: Mapped[str | None] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(30), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
