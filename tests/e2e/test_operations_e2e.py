"""The metrics of a real `idp serve`: every worker and the mail loop count in one scrape."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families


def samples(url: str, name: str, **labels) -> list:
    """The samples named ``name`` with ``labels`` in one scrape of ``url``."""
    response = requests.get(url + "/metrics", timeout=10, headers={"Connection": "close"})
    assert response.status_code == 200, response.text[:200]
    return [
        s
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def scrape(url: str, name: str, **labels) -> float:
    return sum(s.value for s in samples(url, name, **labels))


def test_one_scrape_counts_every_worker(provider):
    before = scrape(provider.url, "idp_http_requests_total", endpoint="health.healthz", status="200")
    for _ in range(40):
        # A new connection each time, so the workers share the requests.
        response = requests.get(provider.url + "/healthz", timeout=10, headers={"Connection": "close"})
        assert response.status_code == 200 and response.headers["X-Request-Id"]
    for _ in range(4):
        assert scrape(provider.url, "idp_http_requests_total", endpoint="health.healthz", status="200") == before + 40


def test_the_mail_loop_counts_in_the_same_scrape(provider, mailbox):
    before = scrape(provider.url, "idp_mails_total", event="sent")
    provider.cli("invitations", "create", "--email", "metrics@example.com", "--administration", "Metrics BV", "--json")
    mailbox.wait_for_mail("metrics@example.com")
    deadline = time.monotonic() + 10
    while scrape(provider.url, "idp_mails_total", event="sent") < before + 1:
        assert time.monotonic() < deadline, "the delivered mail was not counted"
        time.sleep(0.2)


def test_serve_prunes_at_start_and_then_every_interval(provider):
    # The first round runs when the server starts; the counts are logged.
    line = provider.wait_for_log("pruned", "flows", "tokens", timeout=20)
    assert "authorization_codes" in line and "outbox" in line


def test_on_sqlite_the_checkpoint_loop_shows_the_wal_in_the_same_scrape(provider):
    if not provider.env["IDP_DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite's WAL: no checkpoint loop on PostgreSQL")
    provider.cli("invitations", "create", "--email", "wal@example.com", "--administration", "WAL BV", "--json")
    deadline = time.monotonic() + 10
    while True:
        states = {s.labels["state"]: s.value for s in samples(provider.url, "idp_sqlite_wal_pages")}
        if set(states) == {"written", "not_checkpointed"}:
            break
        assert time.monotonic() < deadline, "no pass of the checkpoint loop in the scrape"
        time.sleep(0.2)
    assert 0 <= states["not_checkpointed"] <= states["written"]
