"""Counting failed tries of an account or a connector user: five within 15 minutes lock it
for 15 minutes; after three lockouts in a row only support unlocks it."""

from __future__ import annotations

import datetime as dt

from .. import clock

LOCK_AFTER = 5
LOCK_WINDOW = dt.timedelta(minutes=15)
LOCK_FOR = dt.timedelta(minutes=15)
LOCKOUTS_UNTIL_SUPPORT = 3
UNTIL_SUPPORT = dt.datetime(9999, 12, 31)


def is_locked(principal) -> bool:
    return principal.locked_at(clock.now())


def count_failure(principal) -> bool:
    """One more failure; True when this one locked the principal."""
    now = clock.now()
    if principal.first_failed_at is None or now - principal.first_failed_at > LOCK_WINDOW:
        principal.first_failed_at = now
        principal.failed_attempts = 0
    principal.failed_attempts += 1
    if principal.failed_attempts < LOCK_AFTER:
        return False
    principal.lockouts += 1
    principal.locked_until = UNTIL_SUPPORT if until_support(principal) else now + LOCK_FOR
    principal.failed_attempts = 0
    principal.first_failed_at = None
    return True


def until_support(principal) -> bool:
    return principal.lockouts >= LOCKOUTS_UNTIL_SUPPORT


def clear(principal) -> None:
    """A success: the count starts again."""
    principal.failed_attempts = 0
    principal.first_failed_at = None
    principal.lockouts = 0


def unlock(principal) -> None:
    principal.locked_until = None
    clear(principal)
