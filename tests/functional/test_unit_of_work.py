"""One unit of work per request: committed below 400, rolled back otherwise; kept() records stay."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from idp import clock, unit_of_work
from idp.extensions import db
from idp.models import AuditEvent
from idp.services import audit, mailer
from idp.telemetry.metrics import REGISTRY
from idp.unit_of_work import after_commit, kept


@pytest.fixture
def probe(app):
    ran = []

    @app.route("/_probe/<int:status>")
    def _probe(status):
        with kept():
            audit.record("probe.kept", outcome="failure")
        audit.record("probe.pending")
        mailer.queue("probe@example.com", "totp_cleared", "en", name="Probe", email="probe@example.com")
        after_commit(lambda: ran.append(status))
        return "", status

    return ran


def _actions(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("probe.%"))))


def _counted() -> tuple[float, float, float]:
    """How often the probe's kept and pending audit events and its mail were counted."""
    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return (value("idp_security_events_total", action="probe.kept", outcome="failure"),
            value("idp_security_events_total", action="probe.pending", outcome="success"),
            value("idp_mails_total", event="queued", kind="totp_cleared"))


def test_a_request_that_succeeds_is_committed_then_runs_its_after_commit_work(app, client, probe):
    before = _counted()
    assert client.get("/_probe/302").status_code == 302
    assert _actions(app) == ["probe.kept", "probe.pending"]
    assert probe == [302]
    assert [after - b for after, b in zip(_counted(), before)] == [1, 1, 1]


def test_a_request_that_fails_keeps_only_what_was_kept_and_counts_only_that(app, client, probe):
    before = _counted()
    assert client.get("/_probe/400").status_code == 400
    assert _actions(app) == ["probe.kept"]
    assert probe == []
    # The rolled-back event and mail were never written: neither counted nor logged.
    assert [after - b for after, b in zip(_counted(), before)] == [1, 0, 0]


def test_a_refused_link_step_leaves_the_flow_where_it_was(app, browser, portal, person):
    from idp.models import Flow

    browser.authorize(portal["client_id"])
    browser.submit(email=person["email"])
    flow_id = browser.url.rsplit("/", 1)[-1]
    browser.get(browser.url + "/forgot-password")
    assert browser.step_state == "forgot_email"
    with app.app_context():
        assert db.session.get(Flow, flow_id).state == "password"  # the link only shows the page
    browser.submit(email="not an address")
    assert browser.status == 400 and browser.step_state == "forgot_email"
    with app.app_context():
        assert db.session.get(Flow, flow_id).state == "password"  # the failed step is rolled back
    browser.submit(email=person["email"])
    assert browser.step_state == "forgot_code"


RAW_INSERT = text("INSERT INTO audit_events (at, actor, action, outcome, detail) "
                  "VALUES (:at, 'anonymous', :action, 'success', '{}')")


@pytest.fixture
def commits(app):
    """The COMMITs the database is sent."""
    seen = []
    with app.app_context():
        engine = db.engine
    listener = lambda connection: seen.append(connection)  # noqa: E731
    event.listen(engine, "commit", listener)
    yield seen
    event.remove(engine, "commit", listener)


@pytest.fixture
def raw_writer(app):
    @app.route("/_raw/<how>")
    def _raw(how):
        db.session.scalars(select(AuditEvent.action)).all()
        params = {"at": clock.now().replace(tzinfo=None), "action": f"probe.raw.{how}"}
        if how == "session":
            db.session.execute(RAW_INSERT, params)
        elif how == "connection":
            db.session.connection().execute(RAW_INSERT, params)
        elif how == "flushed":
            audit.record("probe.raw.flushed")
            db.session.flush()
        return "", 200


@pytest.mark.parametrize("how", ["session", "connection", "flushed"])
def test_a_request_that_wrote_through_any_statement_is_committed(app, client, raw_writer, commits, how):
    assert client.get(f"/_raw/{how}").status_code == 200
    assert len(commits) == 1
    assert _actions(app) == [f"probe.raw.{how}"]



def test_a_read_sees_what_the_request_wrote_and_a_plain_read_makes_no_session(app):
    from idp.unit_of_work import read_first, read_scalar

    statement = select(AuditEvent.action).where(AuditEvent.action == "probe.read")
    with app.app_context():
        assert read_first(statement, {}) is None
        assert not db.session.registry.has()  # read on a connection of its own: no session, nothing to commit
        audit.record("probe.read")  # pending in the request's session, not yet flushed
        assert read_scalar(statement) == "probe.read"
        assert read_first(statement, {})["action"] == "probe.read"
        db.session.rollback()
        assert read_scalar(statement) is None


def test_a_commit_that_meets_the_database_gone_is_a_503_and_a_warning_not_an_error_with_a_traceback(
        app, client, probe, monkeypatch, caplog):
    """The database restarting between a request's work and its commit: the answer is the clear
    503 and the log says so in one warning; Flask's "Exception on ..." error line and traceback
    stay for bugs."""

    def gone():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(unit_of_work, "commit", gone)
    caplog.set_level(logging.INFO)
    response = client.get("/_probe/200")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text and "Exception on" not in caplog.text
    assert any(r.levelno == logging.WARNING and "database unavailable" in r.getMessage() for r in caplog.records)


def test_a_bug_in_a_commit_is_still_a_500_logged_with_its_traceback(app, client, probe, monkeypatch, caplog):
    def bug():
        raise RuntimeError("a bug in the commit")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(unit_of_work, "commit", bug)
    caplog.set_level(logging.INFO)
    response = client.get("/_probe/200")
    assert response.status_code == 500
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "Exception on /_probe/200" in errors[0].getMessage() and errors[0].exc_info
