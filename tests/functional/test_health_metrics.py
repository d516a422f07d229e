"""/healthz, /readyz and /metrics as a load balancer and Prometheus see them."""

from __future__ import annotations

import os
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp import create_app

from ..helpers import CHEAP_CAPTCHA, make_client, sample, token_request, wrong_password

TOKEN = "metrics-bearer-token-0123456789abcdef"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def standalone_app(tmp_path, **config):
    os.environ["IDP_INSTANCE_PATH"] = str(tmp_path / "instance")
    base = {
        "TESTING": True,
        "ENV": "development",
        "ISSUER": "http://idp.test",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "RATELIMIT_ENABLED": False,
    }
    return create_app({**base, **config})


def test_healthz_answers_without_the_database(tmp_path):
    app = standalone_app(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/no/such/dir/idp.db")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok"}}


def test_readyz_names_a_broken_database(tmp_path):
    app = standalone_app(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/no/such/dir/idp.db")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"database": "unavailable"}}


def test_readyz_names_redis_that_does_not_answer(tmp_path, db_url, app):
    broken = standalone_app(tmp_path, DATABASE_URL=db_url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/10")
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "checks": {"database": "ok", "redis": "unavailable"}}


@pytest.mark.skipif(not os.environ.get("IDP_TEST_REDIS_URL"), reason="needs IDP_TEST_REDIS_URL")
@pytest.mark.config(REDIS_URL=os.environ.get("IDP_TEST_REDIS_URL", ""))
def test_readyz_checks_redis_when_it_is_set(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_metrics_are_prometheus_text_for_loopback(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {f.name for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"idp_http_requests", "idp_http_request_duration_seconds", "idp_tokens_issued", "idp_sign_ins",
            "idp_lockouts", "idp_mails", "idp_outbox_queued", "idp_outbox_oldest_due_seconds",
            "idp_backchannel_deliveries"} <= names


def test_metrics_are_hidden_from_other_hosts_without_a_token(client):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 404
    assert b"idp_http_requests" not in response.data


@pytest.mark.config(METRICS_TOKEN=TOKEN)
def test_metrics_need_the_bearer_token_from_other_hosts(client):
    remote = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", environ_base=remote).status_code == 403
    wrong = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
    assert wrong.status_code == 403
    ok = client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer " + TOKEN})
    assert ok.status_code == 200 and b"idp_http_requests_total" in ok.data


def test_a_local_proxy_does_not_make_remote_clients_loopback(client):
    # IDP_TRUSTED_PROXIES=0 with a proxy on this machine: the forwarded request is not ours.
    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 404


def test_requests_are_counted_by_endpoint_and_status(client):
    before_ok = sample(client, "idp_http_requests_total", endpoint="health.healthz", status="200")
    before_404 = sample(client, "idp_http_requests_total", endpoint="unmatched", status="404")
    before_hist = sample(client, "idp_http_request_duration_seconds_count", endpoint="health.healthz")
    for _ in range(3):
        assert client.get("/healthz").data  # a server reads every body: the request ends there
    assert client.get("/no-such-page").data
    assert sample(client, "idp_http_requests_total", endpoint="health.healthz", status="200") == before_ok + 3
    assert sample(client, "idp_http_requests_total", endpoint="unmatched", status="404") == before_404 + 1
    assert sample(client, "idp_http_request_duration_seconds_count", endpoint="health.healthz") == before_hist + 3


def test_tokens_are_counted_by_grant_type(app, client):
    machine = make_client(app, name="Batch", grant_types=("client_credentials",))
    before = sample(client, "idp_tokens_issued_total", grant_type="client_credentials")
    assert token_request(client, machine, {"grant_type": "client_credentials"}).status_code == 200
    assert token_request(client, machine, {"grant_type": "client_credentials"}).status_code == 200
    bad = dict(machine, client_secret="wrong")
    assert token_request(client, bad, {"grant_type": "client_credentials"}).status_code == 401
    assert sample(client, "idp_tokens_issued_total", grant_type="client_credentials") == before + 2


@pytest.mark.config(**CHEAP_CAPTCHA)
def test_sign_ins_lockouts_and_mail_are_counted(app, browser, portal, person, client):
    before = {
        "ok": sample(client, "idp_sign_ins_total", kind="session", outcome="success"),
        "bad": sample(client, "idp_sign_ins_total", kind="password", outcome="failure"),
        "locked": sample(client, "idp_lockouts_total", kind="sign_in"),
        "queued": sample(client, "idp_mails_total", event="queued"),
        "outbox": sample(client, "idp_outbox_queued"),
    }
    browser.authorize(portal["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=True)
    assert browser.callback_params()["code"]
    other = type(browser)(app)
    other.authorize(portal["client_id"])
    other.submit(email=person["email"])
    for _ in range(12):
        wrong_password(other)
        if other.status == 423:
            break
    assert other.status == 423
    assert sample(client, "idp_sign_ins_total", kind="session", outcome="success") == before["ok"] + 1
    failures = sample(client, "idp_sign_ins_total", kind="password", outcome="failure") - before["bad"]
    assert failures >= 1
    assert sample(client, "idp_lockouts_total", kind="sign_in") == before["locked"] + 1
    # The e-mail code and the lockout notice: queued, and waiting in the outbox (no relay here).
    queued = sample(client, "idp_mails_total", event="queued") - before["queued"]
    assert queued >= 2
    assert sample(client, "idp_outbox_queued") == before["outbox"] + queued


def test_readyz_shows_mail_waiting_longer_than_a_minute(app, client):
    import datetime as dt

    from idp import clock
    from idp.extensions import db
    from idp.services import mailer

    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=closed_port())
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    with app.app_context():
        mailer.queue("anna@example.com", "email_code", "en", code="123456", minutes=10, name="Anna")
        db.session.commit()
    clock.advance(seconds=30)
    assert client.get("/readyz").get_json()["checks"]["outbox"] == "ok"
    clock.advance(seconds=40)
    response = client.get("/readyz")
    # Still ready (every instance shares the backlog), but the operator sees it.
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok", "outbox": "backlog"}}


def test_readyz_answers_503_in_seconds_when_the_database_never_answers(tmp_path):
    import threading
    import time

    # A loopback port that accepts connections and never says a word, like a host that hangs.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        app = standalone_app(tmp_path, DATABASE_URL=f"postgresql+psycopg://idp@127.0.0.1:{silent.getsockname()[1]}/idp",
                             DATABASE_CONNECT_TIMEOUT=2, SECRET_KEY="test-secret-key-that-is-long-enough-0123456789")
        result = {}

        def ask():
            result["response"] = app.test_client().get("/readyz")

        started = time.monotonic()
        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(timeout=15)
        assert not asking.is_alive(), "/readyz still waiting after 15 s"
        assert time.monotonic() - started < 8
        assert result["response"].status_code == 503
        assert result["response"].get_json()["checks"]["database"] == "unavailable"
    finally:
        silent.close()
