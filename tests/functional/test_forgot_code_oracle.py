"""The forgotten-password code step answers a known and an unknown address alike: the same
statuses and messages for wrong codes, and the same database work for each try."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from idp.extensions import db
from idp.oauth import clients
from tests.helpers import code_from_mail


@pytest.fixture(autouse=True)
def client_read_on_every_lookup(monkeypatch):
    """The step's page names the app, from the per-process client cache (oauth/clients.py), whose
    entries last CACHE_SECONDS of the machine's monotonic clock. On a loaded machine one run's try
    came after the entry expired and read the client again, the other run's same try did not: work
    that tells the runs apart by time, not by address. Stored already expired, the entry makes every
    try read the client alike, so the comparison below sees all the work, whatever the load."""
    monkeypatch.setattr(clients, "CACHE_SECONDS", -1.0)


def at_code_step(browser, portal, email):
    browser.authorize(portal["client_id"])
    browser.submit(email=email)
    href = re.search(r'id="forgot-password" href="([^"]+)"', browser.text).group(1)
    browser.get(href.replace("&amp;", "&"))
    browser.submit()
    assert browser.step_state == "forgot_code", (browser.status, browser.alert)


def shape(statement: str) -> str:
    """A statement without its literal values: what work it is, not on which row."""
    return re.sub(r"'[^']*'|\b\d+\b", "?", " ".join(statement.split()))


@contextmanager
def statements(app):
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(shape(statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def wrong_codes(app, browser, portal, email, times=7):
    at_code_step(browser, portal, email)
    answers, work = [], []
    for _ in range(times):
        with statements(app) as seen:
            browser.submit(email_code="000000")
        answers.append((browser.status, browser.alert, browser.step_state))
        work.append(seen)
    return answers, work


def test_wrong_codes_answer_the_same_for_known_and_unknown_addresses(app, portal, person):
    from tests.helpers import Browser

    known, known_work = wrong_codes(app, Browser(app), portal, person["email"])
    unknown, unknown_work = wrong_codes(app, Browser(app), portal, "nobody@example.com")
    assert known == unknown
    assert [status for status, _, _ in known] == [400] * 4 + [429] * 3
    # The same statements, in the same order, for every try: no work tells them apart.
    assert known_work == unknown_work


def test_the_known_address_still_gets_its_code_accepted(app, browser, portal, person):
    at_code_step(browser, portal, person["email"])
    browser.submit(email_code="000000")
    assert browser.status == 400
    browser.submit(email_code=code_from_mail(app, person["email"]))
    assert browser.step_state == "new_password", (browser.status, browser.alert)


def test_the_unknown_address_gets_no_mail_and_no_way_through(app, browser, portal):
    from tests.helpers import mail_count

    at_code_step(browser, portal, "nobody@example.com")
    browser.action("resend")
    assert mail_count(app, "nobody@example.com") == 0
    for code in ("000000", "123456", "999999"):
        browser.submit(email_code=code)
        assert browser.status == 400 and browser.step_state == "forgot_code"
