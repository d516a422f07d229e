"""People's accounts, the administrations (companies, firms) and their memberships."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at, new_id


class Account(db.Model):
    __tablename__ = "accounts"

    # The opaque, stable `sub` of every token.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    role: Mapped[str] = mapped_column(String(20), default="user", nullable=False)  # user | support
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # TOTP secret, encrypted (services.crypto); None until enrolled.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enrolled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The time-step counter of the last accepted TOTP code: no replay.
    totp_last_counter: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    first_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lockouts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[dt.datetime] = created_at()

    memberships: Mapped[list[Membership]] = relationship(back_populates="account", lazy="selectin")

    @property
    def sub(self) -> str:
        return self.id

    @property
    def totp_enrolled(self) -> bool:
        return self.totp_secret is not None and self.totp_enrolled_at is not None

    def status(self, now: dt.datetime) -> str:
        if self.disabled_at is not None:
            return "disabled"
        if self.locked_until is not None and self.locked_until > now:
            return "locked"
        return "active"

    # Authlib asks the user object for this.
    def get_user_id(self) -> str:
        return self.id


class Administration(db.Model):
    __tablename__ = "administrations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), default="company", nullable=False)  # company | firm
    created_at: Mapped[dt.datetime] = created_at()


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("account_id", "administration_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    administration_id: Mapped[str] = mapped_column(
        ForeignKey("administrations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(20), nullable=False)  # owner | accountant | employee
    created_at: Mapped[dt.datetime] = created_at()

    account: Mapped[Account] = relationship(back_populates="memberships")
    administration: Mapped[Administration] = relationship(lazy="joined")
