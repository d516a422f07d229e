"""One unit of work per request: committed below 400, rolled back otherwise; kept() records stay."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.services import audit
from idp.unit_of_work import after_commit, kept


@pytest.fixture
def probe(app):
    ran = []

    @app.route("/_probe/<int:status>")
    def _probe(status):
        with kept():
            audit.record("probe.kept", outcome="failure")
        audit.record("probe.pending")
        after_commit(lambda: ran.append(status))
        return "", status

    return ran


def _actions(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("probe.%"))))


def test_a_request_that_succeeds_is_committed_then_runs_its_after_commit_work(app, client, probe):
    assert client.get("/_probe/302").status_code == 302
    assert _actions(app) == ["probe.kept", "probe.pending"]
    assert probe == [302]


def test_a_request_that_fails_keeps_only_what_was_kept(app, client, probe):
    assert client.get("/_probe/400").status_code == 400
    assert _actions(app) == ["probe.kept"]
    assert probe == []


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
