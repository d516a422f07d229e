"""Rate limits that are not per request path: per account, counted in Flask-Limiter's
storage (Redis when IDP_REDIS_URL is set, so every worker and machine counts once)."""

from __future__ import annotations

from flask import current_app
from limits import parse

from ..extensions import limiter


def allow(namespace: str, key: str, limit_setting: str) -> bool:
    """Count one try for ``key``; False once the configured limit is exceeded."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return True
    value = current_app.config.get(limit_setting) or ""
    for item in (parse(part) for part in value.split(";") if part.strip()):
        if not limiter.limiter.hit(item, namespace, key.lower()):
            return False
    return True


def exhausted(namespace: str, key: str, limit_setting: str) -> bool:
    """Whether ``key`` has used up the configured limit (without counting a try)."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return False
    value = current_app.config.get(limit_setting) or ""
    return any(not limiter.limiter.test(item, namespace, key.lower())
               for item in (parse(part) for part in value.split(";") if part.strip()))
