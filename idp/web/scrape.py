"""The text /metrics answers: every worker's samples, and the outboxes' backlogs read at scrape time."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from ..telemetry.metrics import REGISTRY

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OutboxBacklog:
    """Collected at scrape time: what waits in each outbox, and how long the oldest due row waits."""

    HELP = {
        "outbox": ("Mails in the outbox not yet sent or abandoned.",
                   "Age of the oldest mail due for delivery (0 when none is due)."),
        "backchannel": ("Back-channel logouts not yet delivered or abandoned.",
                        "Age of the oldest back-channel logout due for delivery (0 when none is due)."),
    }

    def collect(self):
        from ..services import outbox_stats

        # Without the database (None) the rest of the scrape is still worth having: /readyz says why.
        backlogs = outbox_stats.backlogs() or {}
        for name, (queued, oldest_due_age) in backlogs.items():
            queued_help, age_help = self.HELP[name]
            yield GaugeMetricFamily(f"idp_{name}_queued", queued_help, value=queued)
            yield GaugeMetricFamily(f"idp_{name}_oldest_due_seconds", age_help, value=oldest_due_age)


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
