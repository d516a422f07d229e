"""Column helpers shared by the models, and the hash tokens and secrets are stored as."""

import hashlib
import secrets
import uuid

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock


def new_id() -> str:
    return uuid.uuid4().hex


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(value: str) -> str:
    """SHA-256 of a random 256-bit token: enough, since such a token cannot be guessed."""
    return hashlib.sha256(value.encode()).hexdigest()


def substring_index(name: str, column) -> Index:
    """A trigram index (PostgreSQL's pg_trgm) on ``lower(column)``, for ``LIKE '%part%'`` searches
    that must not read every row. PostgreSQL only: SQLite serves one machine and scans."""
    label = f"{column.key}_lower"
    return Index(name, func.lower(column).label(label), postgresql_using="gin",
                 postgresql_ops={label: "gin_trgm_ops"}).ddl_if(dialect="postgresql")


def created_at():
    return mapped_column(DateTime, default=clock.now, nullable=False)


def belongs_to(table: str):
    """The key of the ``table`` row this row belongs to: required, deleted with it, indexed."""
    return mapped_column(ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False, index=True)


class LockoutState:
    """Failed-try counters: an account's (services.lockout) and a sign-in source's (services.smart_lockout)."""

    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    first_failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lockouts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)

    def locked_at(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now
