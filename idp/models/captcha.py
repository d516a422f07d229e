"""CAPTCHA challenges already solved once, so a solution cannot be replayed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class UsedCaptcha(db.Model):
    """A solved challenge, remembered until the challenge would have expired."""

    __tablename__ = "used_captchas"

    # The challenge's HMAC signature (hex); unique per challenge.
    signature: Mapped[str] = mapped_column(String(128), primary_key=True)
    # When the challenge itself expires; after that the row is no longer needed.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)
