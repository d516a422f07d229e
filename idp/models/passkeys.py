"""Passkeys: the WebAuthn credentials people register as a way to sign in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .accounts import Account
from .base import belongs_to, created_at, new_id

# The longest credential id WebAuthn allows is 1023 bytes: 1364 characters in base64url.
CREDENTIAL_ID_MAX = 1400


class Passkey(db.Model):
    """One discoverable credential of an account. Its public key is no secret; what the
    authenticator reports at each use (the signature counter, the backup state) is kept,
    so a counter that goes back (a cloned key) is noticed."""

    __tablename__ = "passkeys"

    # How pages and forms name it: the credential id stays between the browser and the provider.
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = belongs_to("accounts")
    # base64url, as the browser names it in an assertion.
    credential_id: Mapped[str] = mapped_column(String(CREDENTIAL_ID_MAX), unique=True, nullable=False)
    # The COSE key from the registration.
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    # The authenticator's signature counter (32 bits unsigned); 0 for authenticators that keep none.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    aaguid: Mapped[str] = mapped_column(String(36), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # The BE flag: the key may be copied to other devices (a synced passkey). It never changes.
    backup_eligible: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # The BS flag at the last use: the key is backed up now.
    backed_up: Mapped[bool] = mapped_column(Boolean, nullable=False)
    transports: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    created_at: Mapped[dt.datetime] = created_at()
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship(lazy="joined")
