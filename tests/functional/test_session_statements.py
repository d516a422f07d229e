"""A statement of the request's own work (unit_of_work.execute: a flow read and written, an audit
event appended, a code or a token saved) runs on the DB-API connection under the session's,
compiled once: it must belong to the session's transaction, see its pending changes, find and
write what SQLAlchemy does, fail as SQLAlchemy fails, and leave statement listeners seeing it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from idp import clock, unit_of_work
from idp.extensions import db
from idp.flows import base as flows
from idp.models import Account, AuditEvent

ACTION = "probe.statement"


def _count(action: str = ACTION) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _append(action: str = ACTION):
    return unit_of_work.execute(insert(AuditEvent.__table__), {
        "at": clock.now(), "actor": "probe", "action": action, "subject": None, "account_id": None,
        "outcome": "success", "ip": None, "reason": None, "detail": {"n": 1}})


def test_a_statement_belongs_to_the_sessions_transaction(app):
    with app.app_context():
        _append()
        assert db.session().in_transaction()
        assert _count() == 1  # the session's own reads see it
        db.session.rollback()
        assert _count() == 0
        _append()
        db.session.commit()
    with app.app_context():
        assert _count() == 1


def test_a_statement_sees_what_the_session_holds_unflushed(app):
    with app.app_context():
        db.session.add(AuditEvent(at=clock.now(), actor="probe", action=ACTION, outcome="success", detail={}))
        counted = unit_of_work.execute(
            select(func.count(AuditEvent.__table__.c.id)).where(AuditEvent.__table__.c.action == ACTION), {})
        assert counted.first() == (1,)
        db.session.rollback()


def test_a_flow_is_written_and_read_as_sqlalchemy_writes_and_reads_it(app):
    data = {"next": "/somewhere", "tries": [1, 2], "nested": {"ok": True}}
    with app.app_context():
        now = clock.now()
        values = dict.fromkeys(flows.COLUMNS)
        values.update(id="f" * 43, kind="login", state="email", data=data, created_at=now,
                      expires_at=now + dt.timedelta(minutes=10))
        unit_of_work.execute(flows._INSERT, values)  # noqa: SLF001 - the flows' own statements
        db.session.commit()
        ours = unit_of_work.execute(flows._BY_ID, {"flow_id": "f" * 43}).mapping()  # noqa: SLF001
        theirs = dict(db.session.execute(flows._BY_ID, {"flow_id": "f" * 43}).mappings().one())  # noqa: SLF001
        assert ours == theirs
        assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
        assert ours["data"] == data and isinstance(ours["created_at"], dt.datetime)
        # An UPDATE sets the columns it is given, whichever they are.
        assert unit_of_work.execute(flows._UPDATE, {"flow_id": "f" * 43, "state": "password"}).rowcount == 1  # noqa: SLF001
        unit_of_work.execute(flows._UPDATE, {"flow_id": "f" * 43, "data": {"n": 2}, "account_id": None})  # noqa: SLF001
        db.session.commit()
        row = unit_of_work.execute(flows._BY_ID, {"flow_id": "f" * 43}).mapping()  # noqa: SLF001
        assert (row["state"], row["data"], row["kind"]) == ("password", {"n": 2}, "login")
        assert unit_of_work.execute(flows._BY_ID, {"flow_id": "no such flow"}).mapping() is None  # noqa: SLF001
        db.session.rollback()


def test_a_column_default_computed_in_python_is_computed(app):
    with app.app_context():
        unit_of_work.execute(insert(Account.__table__), {"email": "defaults@example.com"})
        db.session.commit()
        account = db.session.scalars(select(Account).where(Account.email == "defaults@example.com")).one()
        assert len(account.id) == 32 and account.role == "user" and account.totp_last_counter == 0


def test_a_database_error_is_sqlalchemys_and_the_session_goes_on(app):
    with app.app_context():
        unit_of_work.execute(insert(Account.__table__), {"id": "a" * 32, "email": "one@example.com"})
        db.session.commit()
        with pytest.raises(IntegrityError):
            unit_of_work.execute(insert(Account.__table__), {"id": "a" * 32, "email": "two@example.com"})
        db.session.rollback()
        _append()
        db.session.commit()
        assert _count() == 1


def test_statement_listeners_see_the_statements_and_the_results_are_the_same(app):
    seen = []
    with app.app_context():
        engine = db.engine

        def before(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement.split()[0])

        event.listen(engine, "before_cursor_execute", before)
        try:
            _append()
            found = unit_of_work.execute(
                select(AuditEvent.__table__.c.action, AuditEvent.__table__.c.detail)
                .where(AuditEvent.__table__.c.action == ACTION), {})
            assert found.first() == (ACTION, {"n": 1})
            assert found.mapping() == {"action": ACTION, "detail": {"n": 1}}
            table = AuditEvent.__table__
            renamed = unit_of_work.execute(
                update(table).where(table.c.action == bindparam("old")).values(action=bindparam("new")),
                {"old": ACTION, "new": ACTION + ".renamed"})
            assert renamed.rowcount == 1
            db.session.rollback()
        finally:
            event.remove(engine, "before_cursor_execute", before)
    assert seen[:3] == ["INSERT", "SELECT", "UPDATE"]
