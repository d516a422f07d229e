"""The text /metrics answers: every worker's samples, and the outbox backlog read at scrape time."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from ..telemetry.metrics import REGISTRY

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OutboxBacklog:
    """Collected at scrape time: mail waiting in the outbox, and how long the oldest due one waits."""

    def collect(self):
        from sqlalchemy.exc import SQLAlchemyError

        from ..extensions import db
        from ..services import outbox_stats

        try:
            queued, oldest_due_age = outbox_stats.backlog()
        except SQLAlchemyError:
            # The database is away: the rest of the scrape is still worth having (/readyz says why).
            db.session.rollback()
            return
        yield GaugeMetricFamily("idp_outbox_queued", "Mails in the outbox not yet sent or abandoned.", value=queued)
        yield GaugeMetricFamily(
            "idp_outbox_oldest_due_seconds", "Age of the oldest mail due for delivery (0 when none is due).",
            value=oldest_due_age,
        )


def render() -> bytes:
    """The Prometheus text of every worker's samples and the outbox backlog."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    backlog = CollectorRegistry()
    backlog.register(OutboxBacklog())
    return text + generate_latest(backlog)
