"""Rate limits that are not per request path: per account, counted in Flask-Limiter's
storage (Redis when IDP_REDIS_URL is set, so every worker and machine counts once)."""

from __future__ import annotations

import functools
import logging
import sys

from flask import current_app
from limits import parse
from limits.errors import StorageError

from ..extensions import limiter

log = logging.getLogger(__name__)
# What the storage raises when Redis is away. By default it propagates and the step answers
# 503 (web/unavailable.py: limits on passwords and codes fail closed); ``fail_open=True``
# is for limits whose guard is elsewhere (client secrets at /token are too long to guess).


def storage_away() -> tuple[type[Exception], ...]:
    """The errors of a storage that is away: limits' own, and redis-py's once it is loaded. It is
    loaded only with IDP_REDIS_URL (some 7 MiB): without it no Redis error can occur."""
    redis_exceptions = sys.modules.get("redis.exceptions")
    return (StorageError, redis_exceptions.RedisError) if redis_exceptions else (StorageError,)


@functools.lru_cache(maxsize=64)
def _items(value: str) -> tuple:
    """The limits of a setting ("20 per minute; 100 per hour"), parsed once per value."""
    return tuple(parse(part) for part in value.split(";") if part.strip())


def allow(namespace: str, key: str, limit_setting: str, fail_open: bool = False) -> bool:
    """Count one try for ``key``; False once the configured limit is exceeded."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return True
    value = current_app.config.get(limit_setting) or ""
    try:
        for item in _items(value):
            if not limiter.limiter.hit(item, namespace, key.lower()):
                return False
    except storage_away() as exc:
        if not fail_open:
            raise
        log.warning("rate limits unavailable (Redis): %s; %s not counted", exc.__class__.__name__, namespace)
    return True


def exhausted(namespace: str, key: str, limit_setting: str, fail_open: bool = False) -> bool:
    """Whether ``key`` has used up the configured limit (without counting a try)."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return False
    value = current_app.config.get(limit_setting) or ""
    try:
        return any(not limiter.limiter.test(item, namespace, key.lower()) for item in _items(value))
    except storage_away() as exc:
        if not fail_open:
            raise
        log.warning("rate limits unavailable (Redis): %s; %s not checked", exc.__class__.__name__, namespace)
        return False
