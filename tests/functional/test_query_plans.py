"""Every query of the hot requests uses an index: a sign-in, the code exchange, a refresh,
introspection and userinfo, a logout, the support search, and the delivery loops' claims.
Their statements are caught as they run and each is EXPLAINed on PostgreSQL with sequential
scans switched off: a plan that still reads a whole table (a sequential scan, or an index
walked end to end without a condition) has no index to find its rows with, and at a million
rows that query would cost a million rows (bench/scale.py measures it)."""

from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from idp import clock
from idp.extensions import db
from tests.helpers import FULL, T0, basic, exchange_code, introspect, make_account, make_client, refresh

pytestmark = pytest.mark.skipif(not os.environ.get("IDP_TEST_DATABASE_URL"), reason="EXPLAIN plans are PostgreSQL's")

# Tables of a handful of rows, read through a cache: a scan is what a plan should do there.
SMALL_TABLES = {"signing_keys"}
# What the requests below must have touched, so that the test cannot pass by catching nothing:
# the hot lookups by the table they read.
HOT = {
    "tokens": "token lookup by access or refresh hash",
    "authorization_codes": "code lookup",
    "accounts": "account by e-mail, support search",
    "sessions": "session by id",
    "flows": "flows by id",
    "sign_in_sources": "sign-in source lookup",
    "outbox": "mail outbox claims",
    "backchannel_outbox": "back-channel outbox claims",
    "connector_users": "support search by connector username",
}


class Statements:
    """The statements run on the app's engine while ``catch()`` is open (every thread)."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.seen: dict[str, dict] = {}
        self._on = False
        self._lock = threading.Lock()
        event.listen(self.engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if self._on and not executemany and re.match(r"\s*(SELECT|UPDATE|DELETE)\b", statement, re.I):
            with self._lock:
                self.seen.setdefault(statement, parameters)

    @contextmanager
    def catch(self):
        self._on = True
        try:
            yield
        finally:
            self._on = False

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._before)


def _whole_table_reads(plan: dict):
    """The relations a JSON plan reads whole: a sequential scan, or an index walked from end to
    end without a condition (to keep an order; every row still passes by the filter)."""
    node, relation = plan["Node Type"], plan.get("Relation Name")
    if node == "Seq Scan" or (node in ("Index Scan", "Index Only Scan") and "Index Cond" not in plan):
        yield relation
    for child in plan.get("Plans", ()):
        yield from _whole_table_reads(child)


def whole_table_reads(engine, statements: dict[str, dict]) -> list[tuple[str, str]]:
    found = []
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements.items():
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()[0]["Plan"]
            for relation in _whole_table_reads(plan):
                if relation not in SMALL_TABLES:
                    text = " ".join(statement.split())
                    found.append((relation, text[max(text.find(" FROM "), 0):][:400]))
        conn.rollback()
    return found


def tables_of(statements) -> set[str]:
    return {name for statement in statements for name in re.findall(r'\b(?:FROM|JOIN|UPDATE)\s+"?(\w+)', statement)}


@pytest.fixture
def statements(app):
    caught = Statements(app)
    yield caught
    caught.close()


@pytest.mark.config(MAIL_SERVER="127.0.0.1", MAIL_PORT=9)  # the claims run; delivery to the closed port fails
def test_the_hot_requests_use_an_index_for_every_query(app, browser, statements, cli):
    portal = make_client(app, name="Portal", extra=["--backchannel-logout-uri", "http://127.0.0.1:9/bc"])
    person = make_account(app, "anna@example.com", "correct horse battery staple", name="Anna de Vries")
    staff = ("helpdesk@example.com", "Staff-password-2026!")
    assert cli.invoke(args=["staff", "create", "--email", staff[0], "--password", staff[1]]).exit_code == 0
    clock.freeze(T0)
    browser.authorize(portal["client_id"], scope=FULL)
    browser.sign_in(person["email"], person["password"], first_time=True)
    code, verifier = browser.callback_params()["code"], browser.verifier
    with statements.catch():
        # A sign-in (e-mail, a wrong then the right password, the authenticator) and its tokens.
        clock.advance(seconds=20)
        browser.authorize(portal["client_id"], scope=FULL, prompt="login")
        browser.submit(email=person["email"])
        browser.submit(password="not the password")
        browser.submit(password=person["password"])
        browser.submit(totp_code=browser.next_totp())
        http = app.test_client()
        first = exchange_code(http, portal, code, verifier).get_json()
        second = exchange_code(http, portal, browser.callback_params()["code"], browser.verifier).get_json()
        third = refresh(http, portal, second["refresh_token"]).get_json()
        assert introspect(http, portal, third["access_token"])["active"] is True
        assert http.get("/userinfo", headers={"Authorization": "Bearer " + third["access_token"]}).status_code == 200
        assert http.post("/revoke", data={"token": first["access_token"]}, headers=basic(portal)).status_code == 200
        browser.get("/logout")
        browser.submit()
        # The delivery loop's claims of mail and back-channel logouts.
        assert cli.invoke(args=["mail", "deliver"]).exit_code == 0
    caught_signing_in = dict(statements.seen)
    statements.seen.clear()
    support = type(browser)(app)
    support.get("/support")
    support.sign_in(*staff, first_time=True)
    with statements.catch():
        support.get("/support?q=anna")
        assert person["email"] in support.text
        support.get("/support?q=U123")  # a connector username's part
    caught = {**caught_signing_in, **statements.seen}

    missing = {table: why for table, why in HOT.items() if table not in tables_of(caught)}
    assert not missing, f"the requests did not reach: {missing}"
    scans = whole_table_reads(statements.engine, caught)
    assert not scans, "queries without an index:\n" + "\n".join(f"{table}: {sql}" for table, sql in scans)
