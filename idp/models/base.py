"""Column helpers shared by the models."""

import secrets
import uuid

from sqlalchemy import DateTime
from sqlalchemy.orm import mapped_column

from .. import clock


def new_id() -> str:
    return uuid.uuid4().hex


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def created_at():
    return mapped_column(DateTime, default=clock.now, nullable=False)
