"""The one clock of the provider: naive UTC datetimes, frozen in tests."""

from __future__ import annotations

import datetime as _dt
import time as _time

_frozen: _dt.datetime | None = None


def now() -> _dt.datetime:
    if _frozen is not None:
        return _frozen
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def timestamp() -> int:
    if _frozen is not None:
        return int(_frozen.replace(tzinfo=_dt.timezone.utc).timestamp())
    return int(_time.time())


def to_timestamp(value: _dt.datetime) -> int:
    return int(value.replace(tzinfo=_dt.timezone.utc).timestamp())


def from_timestamp(value: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(value, _dt.timezone.utc).replace(tzinfo=None)


def freeze(value: _dt.datetime | None) -> None:
    """Fix the clock at ``value`` (naive UTC); ``None`` lets it run again."""
    global _frozen
    _frozen = value


def advance(**delta) -> None:
    """Move a frozen clock forward by ``datetime.timedelta(**delta)``."""
    global _frozen
    if _frozen is None:
        raise RuntimeError("the clock is not frozen")
    _frozen = _frozen + _dt.timedelta(**delta)
