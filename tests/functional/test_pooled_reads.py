"""A read-only statement outside the request's work (unit_of_work.read_first and read_scalar) runs
on a DB-API connection kept beside the pool (idp.readers), compiled once: it must find what
SQLAlchemy finds, with the same types, fail as SQLAlchemy fails, leave its connection with no
transaction open, recover from a connection the database closed, see every commit made before
it, and on SQLite follow the engine to a fresh database file."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import threading
from contextlib import closing

import pytest
from sqlalchemy import bindparam, event, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from idp import clock, unit_of_work
from idp.extensions import db
from idp.models import AuditEvent, Grant, RevokedToken, Token
from idp.models.base import new_id
from idp.oauth import tokens

from ..helpers import T0, end_backends, engine_on, kept_connection, make_client, traced_round_trips


def _token(app, client_id: str) -> tuple[int, str]:
    with app.app_context():
        grant = Grant(client_id=client_id, account_id=None, amr=["pwd"])
        db.session.add(grant)
        db.session.flush()
        row = Token(client_id=client_id, grant_id=grant.id, access_token_hash=new_id(), scope="openid profile",
                    issued_at=T0, expires_in=3600, refresh_expires_at=T0 + dt.timedelta(days=30))
        db.session.add(row)
        db.session.commit()
        return row.id, row.access_token_hash


@pytest.fixture
def token(app):
    client = make_client(app, name="Reader", grant_types=("client_credentials",))
    return _token(app, client["client_id"])


def test_a_pooled_read_finds_what_sqlalchemy_finds(app, token):
    _, access_hash = token
    statement = tokens._BY_ACCESS_HASH[False]  # noqa: SLF001 - introspection's own statement
    with app.app_context():
        with db.engine.connect() as connection:
            expected = dict(connection.execute(statement, {"hash": access_hash}).mappings().first())
        found = unit_of_work.read_first(statement, {"hash": access_hash})
        assert not db.session.registry.has()
    assert found == expected
    assert {key: type(value) for key, value in found.items()} == {key: type(value) for key, value in expected.items()}
    assert isinstance(found["issued_at"], dt.datetime) and isinstance(found["refresh_expires_at"], dt.datetime)
    with app.app_context():
        assert unit_of_work.read_first(statement, {"hash": "no such hash"}) is None


def test_values_written_into_the_statement_are_bound(app, token):
    token_id, _ = token
    with app.app_context():
        assert unit_of_work.read_scalar(select(Token.scope).where(Token.id == token_id).limit(1)) == "openid profile"
        assert unit_of_work.read_scalar(select(Token.scope).where(Token.id == token_id + 1000).limit(1)) is None
        revoked = select(RevokedToken.token_hash).where(RevokedToken.token_hash == bindparam("hash"))
        db.session.add(RevokedToken(token_hash="a" * 64, expires_at=clock.now() + dt.timedelta(hours=1)))
        db.session.commit()
        assert unit_of_work.read_scalar(revoked, {"hash": "a" * 64}) == "a" * 64
        assert unit_of_work.read_scalar(revoked, {"hash": "b" * 64}) is None


def test_statement_listeners_see_the_read(app, token):
    _, access_hash = token
    seen = []
    with app.app_context():
        engine = db.engine

        def before(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", before)
        try:
            assert unit_of_work.read_first(tokens._BY_ACCESS_HASH[False], {"hash": access_hash}) is not None  # noqa: SLF001
        finally:
            event.remove(engine, "before_cursor_execute", before)
    assert any("FROM tokens" in statement for statement in seen)


def test_a_failed_read_raises_as_sqlalchemy_raises(app):
    missing = select(AuditEvent.action).where(AuditEvent.action == bindparam("action"))
    with app.app_context():
        db.session.execute(text("DROP TABLE audit_events CASCADE" if db.engine.dialect.name == "postgresql"
                                else "DROP TABLE audit_events"))
        db.session.commit()
        with pytest.raises((OperationalError, ProgrammingError)) as raised:
            unit_of_work.read_first(missing, {"action": "x"})
        assert isinstance(raised.value, DBAPIError) and not raised.value.connection_invalidated
        db.metadata.tables["audit_events"].create(db.engine)  # the next test's schema, as it was
        # The connection it failed on was closed; the next read runs on another.
        assert unit_of_work.read_first(missing, {"action": "x"}) is None


def test_on_postgresql_the_read_is_one_round_trip_and_leaves_no_transaction(app, token, tmp_path):
    """One round trip, the SELECT, in autocommit: no ping, no BEGIN and no ROLLBACK, as the
    driver's protocol trace (libpq) shows; and the pool's connections stay as they were."""
    engine_on(app, "postgresql", "PostgreSQL's transactions")
    _, access_hash = token
    statement = tokens._BY_ACCESS_HASH[False]  # noqa: SLF001
    with app.app_context():
        engine = db.engine
        engine.dispose()
        assert unit_of_work.read_first(statement, {"hash": access_hash}) is not None  # a connection made and kept
        connection = kept_connection(engine)
        found, round_trips, sent = traced_round_trips(
            connection, tmp_path / "trace", lambda: unit_of_work.read_first(statement, {"hash": access_hash}))
        assert found["scope"] == "openid profile"
        assert kept_connection(engine) is connection  # the traced connection was the one read on
        assert connection.autocommit is True
        assert connection.info.transaction_status == 0  # IDLE: nothing left open
        pooled = engine.raw_connection()
        try:
            assert pooled.driver_connection is not connection
            assert pooled.driver_connection.autocommit is False
        finally:
            pooled.close()
    assert round_trips == 1, sent


def test_on_postgresql_reads_see_the_commits_before_them(app, token):
    engine_on(app, "postgresql", "PostgreSQL's transactions")
    token_id, _ = token
    with app.app_context():
        assert _scope_of(token_id) == "openid profile"
        for scope in ("openid", "openid email"):
            with db.engine.begin() as other:
                other.execute(text("UPDATE tokens SET scope = :scope WHERE id = :id"), {"scope": scope, "id": token_id})
            assert _scope_of(token_id) == scope


def test_on_postgresql_a_connection_the_database_closed_is_replaced(app, token):
    """The server process behind the kept connection ends, as in a database restart: the read
    finds its row all the same, on a new connection, and the broken one is not kept."""
    engine_on(app, "postgresql", "PostgreSQL's server processes")
    _, access_hash = token
    statement = tokens._BY_ACCESS_HASH[False]  # noqa: SLF001
    with app.app_context():
        engine = db.engine
        engine.dispose()
        assert unit_of_work.read_first(statement, {"hash": access_hash}) is not None
        broken = kept_connection(engine)
        assert end_backends(engine, [broken.info.backend_pid]) == 1
        assert unit_of_work.read_first(statement, {"hash": access_hash}) is not None
        replaced = kept_connection(engine)
        assert replaced is not broken and broken.closed and not replaced.closed
        assert unit_of_work.read_first(statement, {"hash": access_hash}) is not None


def test_a_database_away_at_the_check_out_is_sqlalchemy_s_operational_error(app, token, monkeypatch):
    """What the application's handlers answer 503 (web/unavailable.py), as for a SQLAlchemy connection."""
    _, access_hash = token
    with app.app_context():
        engine = db.engine
        dbapi = engine.dialect.loaded_dbapi

        def away():
            raise dbapi.OperationalError("connection refused")

        monkeypatch.setattr(engine, "raw_connection", away)
        with pytest.raises(OperationalError) as raised:
            unit_of_work.read_first(tokens._BY_ACCESS_HASH[False], {"hash": access_hash})  # noqa: SLF001
        assert isinstance(raised.value.orig, dbapi.OperationalError)


def _scope_of(token_id: int):
    return unit_of_work.read_scalar(select(Token.scope).where(Token.id == bindparam("id")), {"id": token_id})


def test_on_sqlite_each_read_sees_the_commits_before_it_and_holds_nothing_open(app, token):
    """Reads one after the other (on a kept connection) see another connection's commits, and
    leave no read transaction behind: a checkpoint that must wait for every reader completes."""
    engine_on(app, "sqlite", "SQLite's read connections")
    token_id, _ = token
    with app.app_context():
        path = db.engine.url.database
        assert _scope_of(token_id) == "openid profile"
        for scope in ("openid", "openid email", "openid profile email"):
            with closing(sqlite3.connect(path)) as other, other:
                other.execute("UPDATE tokens SET scope = ? WHERE id = ?", (scope, token_id))
            assert _scope_of(token_id) == scope
        with closing(sqlite3.connect(path)) as other:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0


def test_on_sqlite_reads_follow_the_engine_to_a_fresh_database_file(app, token, tmp_path):
    """Once the engine is disposed, the file may be replaced (as the tests' fixture does): reads
    then find the new file's rows, and the old connections wrote nothing into it."""
    engine_on(app, "sqlite", "SQLite's read connections")
    token_id, _ = token
    copy = str(tmp_path / "copy.db")
    with app.app_context():
        path = db.engine.url.database
        assert _scope_of(token_id) == "openid profile"
        db.engine.dispose()  # every connection closed: the file is whole, its log folded in
        shutil.copyfile(path, copy)
        with closing(sqlite3.connect(copy)) as connection, connection:
            connection.execute("UPDATE tokens SET scope = 'the copy' WHERE id = ?", (token_id,))
        shutil.copyfile(copy, path)
        assert _scope_of(token_id) == "the copy"
        db.engine.dispose()
    with closing(sqlite3.connect(path)) as check:
        assert check.execute("SELECT scope FROM tokens WHERE id = ?", (token_id,)).fetchone() == ("the copy",)


def test_reads_in_many_threads_at_once_each_find_their_row(app):
    client = make_client(app, name="Readers", grant_types=("client_credentials",))
    rows = [_token(app, client["client_id"]) for _ in range(6)]
    statement = tokens._BY_ACCESS_HASH[False]  # noqa: SLF001 - introspection's own statement
    start, failures = threading.Barrier(len(rows)), []

    def read(token_id: int, access_hash: str) -> None:
        try:
            with app.app_context():
                start.wait()
                for _ in range(50):
                    found = unit_of_work.read_first(statement, {"hash": access_hash})
                    assert found is not None and found["id"] == token_id
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=read, args=row) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_on_sqlite_a_write_outside_a_transaction_is_refused_and_writes_nothing(app, token):
    """SQLite would begin a transaction for it that nothing commits: refused before it runs."""
    engine_on(app, "sqlite", "SQLite's read connections")
    token_id, _ = token
    with app.app_context():
        statements = unit_of_work.KeptStatements(db.engine)
        try:
            with pytest.raises(ValueError):
                statements.execute(update(Token).where(Token.id == bindparam("token_id")).values(scope="x"),
                                   {"token_id": token_id})
        finally:
            statements.close()
        assert _scope_of(token_id) == "openid profile"
