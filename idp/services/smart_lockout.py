"""Smart lockout of passwords: wrong passwords slow down and lock the source they come from.

Modelled on Microsoft Entra's smart lockout. Failures are counted per (address, source).
For people the address is the e-mail and the source a familiar device of the account (a
browser holding the signed device cookie of an earlier completed sign-in of it, see
web/devices.py) or otherwise the client's IP address, so an attacker's tries from elsewhere
never lock the owner's familiar browser. For connector users (the password grant) the address
is the username and the source the OAuth client with the network address it calls from, so
tries through another client or from elsewhere never lock the bank's own integration.

- Known and unknown addresses are counted alike, in the same table, under keyed hashes: every
  answer is the same until the right password is given.
- After SIGN_IN_CAPTCHA_AFTER_FAILURES failures within LOCKOUT_WINDOW, each further try from
  that source needs a solved proof-of-work CAPTCHA (services/captcha.py); a machine client
  cannot solve one, so the password grant only locks.
- After LOCKOUT_AFTER_FAILURES the source is locked for LOCKOUT_DURATION; each further lock of
  the same source lasts twice as long, up to LOCKOUT_MAX_DURATION. Never for ever: these
  failures are unauthenticated, and a lock that lasts until support acts would hand anyone
  who knows an address a way to shut its owner out.
- A right password from the source, or LOCKOUT_MEMORY without failures, starts it again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import clock
from ..extensions import db
from ..models import SignInSource
from . import crypto

PURPOSE = "sign-in-source"


@dataclass(frozen=True)
class Source:
    """Where a try comes from: ``key`` names it (a device id, an IP address, or a client and
    an IP address); ``kind`` says which for the audit trail."""

    key: str
    familiar: bool
    kind: str


def source_of(account_id: str | None, *, device_id: str | None, device_accounts, ip: str | None) -> Source:
    """A familiar device when this browser's device cookie names the account, else the IP."""
    if account_id is not None and device_id and account_id in (device_accounts or ()):
        return Source("device:" + device_id, True, "familiar device")
    return Source("ip:" + (ip or "unknown"), False, "unfamiliar device or network")


def client_source(client_id: str, ip: str | None) -> Source:
    """A password-grant try: the client that sent it, from the address it came from."""
    return Source(f"client:{client_id} ip:{ip or 'unknown'}", False, "client and network address")


def _seconds(key: str) -> dt.timedelta:
    return dt.timedelta(seconds=current_app.config[key])


def _address_hash(address: str) -> str:
    return crypto.keyed_hash(address.lower(), PURPOSE)


# Built once (a statement made per call costs its construction and cache key each time).
_FIND = select(SignInSource).where(SignInSource.address_hash == bindparam("address_hash"),
                                   SignInSource.source_hash == bindparam("source_hash"))


def _find(address: str, source: Source) -> SignInSource | None:
    return db.session.scalar(_FIND, {"address_hash": _address_hash(address),
                                     "source_hash": crypto.keyed_hash(source.key, PURPOSE)})


@dataclass(frozen=True)
class Standing:
    """What the next try of this address from this source must reckon with."""

    locked_until: dt.datetime | None
    needs_captcha: bool
    # Whether the pair had a row when asked: without one, a right password has nothing to clear.
    counted: bool = field(default=False, compare=False)


def standing(address: str, source: Source) -> Standing:
    row = _find(address, source)
    now = clock.now()
    if row is None:
        return Standing(None, False)
    if _forgotten(row, now):
        return Standing(None, False, counted=True)
    locked = row.locked_until if row.locked_until is not None and row.locked_until > now else None
    recent = row.first_failed_at is not None and now - row.first_failed_at <= _seconds("LOCKOUT_WINDOW")
    failures = row.failed_attempts if recent else 0
    # After a lock the source stays slowed down until it is quiet or right.
    captcha = failures >= current_app.config["SIGN_IN_CAPTCHA_AFTER_FAILURES"] or row.lockouts > 0
    return Standing(locked, captcha, counted=True)


def _forgotten(row: SignInSource, now: dt.datetime) -> bool:
    quiet = row.last_failed_at is None or now - row.last_failed_at > _seconds("LOCKOUT_MEMORY")
    return quiet and (row.locked_until is None or row.locked_until <= now)


def _create(address: str, source: Source) -> SignInSource:
    """The source's row, made now unless a try racing this one made it a moment ago (one
    INSERT that yields to the other on the unique pair, then the row either way)."""
    insert = (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(SignInSource)
    db.session.execute(insert.values(
        address_hash=_address_hash(address), source_hash=crypto.keyed_hash(source.key, PURPOSE),
        failed_attempts=0, lockouts=0,
    ).on_conflict_do_nothing(index_elements=["address_hash", "source_hash"]))
    return _find(address, source)


def count_failure(address: str, source: Source) -> dt.datetime | None:
    """One more wrong password from ``source``; the end of the lock when this one locked it.
    Callers write it inside ``kept()``: it stays although the step fails."""
    now = clock.now()
    row = _find(address, source)
    if row is None:
        row = _create(address, source)
    elif _forgotten(row, now):
        row.lockouts = 0
        row.first_failed_at = None
    if row.first_failed_at is None or now - row.first_failed_at > _seconds("LOCKOUT_WINDOW"):
        row.first_failed_at = now
        row.failed_attempts = 0
    row.failed_attempts += 1
    row.last_failed_at = now
    if row.failed_attempts < current_app.config["LOCKOUT_AFTER_FAILURES"]:
        return None
    row.lockouts += 1
    duration = min(_seconds("LOCKOUT_DURATION") * 2 ** (row.lockouts - 1), _seconds("LOCKOUT_MAX_DURATION"))
    row.locked_until = now + duration
    row.failed_attempts = 0
    row.first_failed_at = None
    return row.locked_until


def succeeded(address: str, source: Source, asked: Standing | None = None) -> None:
    """The right password from this source: its count starts again. ``asked``: what
    ``standing()`` said before this try, which saves the lookup when the pair had no row."""
    if asked is not None and not asked.counted:
        return
    row = _find(address, source)
    if row is not None:
        db.session.delete(row)


def release(address: str) -> int:
    """Support's unlock: every source of this address starts again. The number released."""
    result = db.session.execute(delete(SignInSource).where(SignInSource.address_hash == _address_hash(address)))
    return result.rowcount or 0


def locked_sources(address: str) -> int:
    """How many sources of this address are locked now (for support's view)."""
    now = clock.now()
    return len(list(db.session.scalars(
        select(SignInSource.id).where(SignInSource.address_hash == _address_hash(address),
                                      SignInSource.locked_until > now))))


def prunable(now: dt.datetime):
    """Which rows the pruner may delete: neither locked nor remembered any more."""
    return (SignInSource.last_failed_at < now - _seconds("LOCKOUT_MEMORY")) & (
        SignInSource.locked_until.is_(None) | (SignInSource.locked_until <= now)
    )
