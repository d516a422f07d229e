"""Failed sign-in tries per (address, source): the smart lockout's counters (services.smart_lockout)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import LockoutState


class SignInSource(db.Model, LockoutState):
    """One address tried from one source: a familiar device of the account, or a network
    address. Kept for known and unknown addresses alike, under keyed hashes, so neither the
    answers nor this table tell which addresses have an account."""

    __tablename__ = "sign_in_sources"
    __table_args__ = (UniqueConstraint("address_hash", "source_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    source_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # The last failure: a source quiet for LOCKOUT_MEMORY starts again with short locks.
    last_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
