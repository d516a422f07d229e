"""Whether this instance can serve: its database answers, and Redis when it is configured."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import text

from ..extensions import db

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 2


def _database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _redis() -> None:
    import redis

    client = current_app.extensions.get("idp_readiness_redis")
    if client is None:
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
        )
        current_app.extensions["idp_readiness_redis"] = client
    client.ping()


def check() -> dict[str, str]:
    """{"database": "ok"|"unavailable", "redis": ...}; Redis only when IDP_REDIS_URL is set."""
    checks = {"database": _database}
    if current_app.config["REDIS_URL"]:
        checks["redis"] = _redis
    results = {}
    for name, probe in checks.items():
        try:
            probe()
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
            log.warning("readiness: %s unavailable: %s", name, exc.__class__.__name__)
            results[name] = "unavailable"
        else:
            results[name] = "ok"
    return results
