"""Counting an account's failed authenticator codes (tries that come after the right password):
LOCKOUT_AFTER_FAILURES (five) within LOCKOUT_WINDOW (15 minutes) lock it for LOCKOUT_DURATION
(15 minutes); after LOCKOUTS_UNTIL_SUPPORT (three) lockouts in a row only support unlocks it.
Wrong passwords lock their source instead (smart_lockout)."""

from __future__ import annotations

import datetime as dt

from flask import current_app

from .. import clock

# locked_until of a lockout only support ends.
UNTIL_SUPPORT = dt.datetime(9999, 12, 31)


def _seconds(key: str) -> dt.timedelta:
    return dt.timedelta(seconds=current_app.config[key])


def is_locked(principal) -> bool:
    return principal.locked_at(clock.now())


def count_failure(principal) -> bool:
    """One more failure; True when this one locked the principal."""
    now = clock.now()
    if principal.first_failed_at is None or now - principal.first_failed_at > _seconds("LOCKOUT_WINDOW"):
        principal.first_failed_at = now
        principal.failed_attempts = 0
    principal.failed_attempts += 1
    if principal.failed_attempts < current_app.config["LOCKOUT_AFTER_FAILURES"]:
        return False
    principal.lockouts += 1
    principal.locked_until = UNTIL_SUPPORT if until_support(principal) else now + _seconds("LOCKOUT_DURATION")
    principal.failed_attempts = 0
    principal.first_failed_at = None
    return True


def until_support(principal) -> bool:
    return principal.lockouts >= current_app.config["LOCKOUTS_UNTIL_SUPPORT"]


def clear(principal) -> None:
    """A success: the count starts again."""
    principal.failed_attempts = 0
    principal.first_failed_at = None
    principal.lockouts = 0


def unlock(principal) -> None:
    principal.locked_until = None
    clear(principal)
