"""People's accounts, the administrations (companies, firms) and their memberships."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import clock
from ..extensions import db
from .base import LockoutState, belongs_to, created_at, new_id, substring_index


class Account(db.Model, LockoutState):
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
    created_at: Mapped[dt.datetime] = created_at()

    memberships: Mapped[list[Membership]] = relationship(back_populates="account", lazy="select")

    @property
    def sub(self) -> str:
        return self.id

    @property
    def totp_enrolled(self) -> bool:
        return self.totp_secret is not None and self.totp_enrolled_at is not None

    def status(self, now: dt.datetime) -> str:
        if self.disabled_at is not None:
            return "disabled"
        if self.locked_at(now):
            return "locked"
        return "active"

    # Authlib asks the user object for this.
    def get_user_id(self) -> str:
        return self.id


# Sign-in finds an account by its address whatever its case; support searches parts of addresses and names.
Index("ix_accounts_email_lower", func.lower(Account.email))
substring_index("ix_accounts_email_trgm", Account.email)
substring_index("ix_accounts_name_trgm", Account.name)


class Administration(db.Model):
    """A company's books (kind company) or an accountancy firm (kind firm)."""

    __tablename__ = "administrations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), default="company", nullable=False)  # company | firm
    plan: Mapped[str] = mapped_column(String(40), default="basic", nullable=False)
    # A trial (plan "trial") ends on this day; None for every other plan.
    trial_ends_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # A firm's code, which its clients type to give the firm access (services.firms); None for companies.
    firm_code: Mapped[str | None] = mapped_column(String(16), unique=True, index=True)
    # Company details given at sign-up: Chamber of Commerce number, address, bank account (IBAN).
    kvk_number: Mapped[str | None] = mapped_column(String(8))
    address: Mapped[str | None] = mapped_column(String(300))
    iban: Mapped[str | None] = mapped_column(String(34))
    created_at: Mapped[dt.datetime] = created_at()

    connector: Mapped[ConnectorUser | None] = relationship(back_populates="administration", lazy="selectin")


class FirmClient(db.Model):
    """An accountancy firm's access to a client's administration."""

    __tablename__ = "firm_clients"
    __table_args__ = (UniqueConstraint("firm_id", "administration_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    firm_id: Mapped[str] = belongs_to("administrations")
    administration_id: Mapped[str] = belongs_to("administrations")
    created_at: Mapped[dt.datetime] = created_at()

    firm: Mapped[Administration] = relationship(foreign_keys=[firm_id], lazy="joined")
    administration: Mapped[Administration] = relationship(foreign_keys=[administration_id], lazy="joined")


class ConnectorUser(db.Model):
    """An administration's machine user (koppelgebruiker) for banks and scanning services. Its
    failed password tries are counted per source (services.smart_lockout), not on this row."""

    __tablename__ = "connector_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    administration_id: Mapped[str] = mapped_column(
        ForeignKey("administrations.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    username: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The 24-hour throttle on password resets: the last reset requested, unless released.
    last_reset_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = created_at()

    administration: Mapped[Administration] = relationship(back_populates="connector", lazy="joined")


substring_index("ix_connector_users_username_trgm", ConnectorUser.username)


class Invitation(db.Model):
    """An invitation to create (or join) an administration: a single-use link, stored hashed."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    administration_name: Mapped[str] = mapped_column(String(200), nullable=False)
    plan: Mapped[str] = mapped_column(String(40), default="basic", nullable=False)
    role: Mapped[str] = mapped_column(String(20), default="owner", nullable=False)
    firm_id: Mapped[str | None] = mapped_column(ForeignKey("administrations.id", ondelete="SET NULL"))
    # For accountant and employee invitations: the existing administration to join.
    target_id: Mapped[str | None] = mapped_column(ForeignKey("administrations.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    locale: Mapped[str] = mapped_column(String(5), default="nl", nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now, nullable=False)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    administration_id: Mapped[str | None] = mapped_column(ForeignKey("administrations.id", ondelete="SET NULL"))

    firm: Mapped[Administration | None] = relationship(foreign_keys=[firm_id], lazy="joined")
    target: Mapped[Administration | None] = relationship(foreign_keys=[target_id], lazy="joined")

    def status(self, now: dt.datetime) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "sent"


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("account_id", "administration_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = belongs_to("accounts")
    administration_id: Mapped[str] = belongs_to("administrations")
    role: Mapped[str] = mapped_column(String(20), nullable=False)  # owner | accountant | employee
    created_at: Mapped[dt.datetime] = created_at()

    account: Mapped[Account] = relationship(back_populates="memberships")
    administration: Mapped[Administration] = relationship(lazy="joined")
