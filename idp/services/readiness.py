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


def _outbox() -> str:
    """"backlog" when a mail due for delivery has waited longer than OUTBOX_BACKLOG_AGE: the
    delivery loop is dead or stuck, or the relay refuses (the log says which)."""
    from . import outbox_stats

    _queued, oldest_due_age = outbox_stats.backlog()
    return "backlog" if oldest_due_age > current_app.config["OUTBOX_BACKLOG_AGE"] else "ok"


def ready(checks: dict[str, str]) -> bool:
    """Whether to take traffic: the database and Redis answer. A mail backlog is shown but does
    not count: every instance shares it, and taking them all out of the load balancer would turn
    late mail into an outage."""
    return all(value == "ok" for name, value in checks.items() if name not in INFORMATIONAL)


INFORMATIONAL = ("outbox",)


def check() -> dict[str, str]:
    """{"database": "ok"|"unavailable", "redis": ..., "outbox": "ok"|"backlog"}; Redis only when
    IDP_REDIS_URL is set, the outbox only when a relay (IDP_MAIL_SERVER) is."""
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
    if current_app.config["MAIL_SERVER"] and results["database"] == "ok":
        try:
            results["outbox"] = _outbox()
        except Exception as exc:
            log.warning("readiness: outbox unreadable: %s", exc.__class__.__name__)
            db.session.rollback()
    return results
