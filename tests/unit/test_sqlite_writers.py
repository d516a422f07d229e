"""SQLite writers take turns at a lock file (idp/sqlite_writers.py): a writer waits for the turn,
not in SQLite's busy handler; the turn comes back when the transaction ends; nothing deadlocks."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, event, text

from idp import sqlite_writers


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}", connect_args={"timeout": 30})
    sqlite_writers.take_turns(engine)

    @event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    engine.dispose()


def _turn_is_free(engine) -> bool:
    """Whether another process could take the turn now (a separate open of the lock file)."""
    fd = os.open(f"{engine.url.database}-lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _holding(connection) -> bool:
    return connection.connection.dbapi_connection._holding


def test_a_write_takes_the_turn_until_its_transaction_ends(engine):
    with engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, sqlite_writers.Connection)
        connection.execute(text("SELECT count(*) FROM t"))
        assert not _holding(connection) and _turn_is_free(engine)
        connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        assert _holding(connection) and not _turn_is_free(engine)
        connection.execute(text("SELECT count(*) FROM t"))
        assert _holding(connection)
        connection.commit()
        assert not _holding(connection) and _turn_is_free(engine)
        connection.execute(text("UPDATE t SET v = 'b'"))
        assert not _turn_is_free(engine)
        connection.rollback()
        assert _turn_is_free(engine)
        # A statement that opens no transaction gives the turn back at once.
        connection.execute(text("WITH x AS (SELECT 1) SELECT * FROM x"))
        assert not _holding(connection) and _turn_is_free(engine)


def test_a_failed_write_keeps_the_turn_until_rolled_back_and_a_closed_connection_gives_it_back(engine):
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO t (id, v) VALUES (1, 'a')"))
        with pytest.raises(Exception, match="UNIQUE"):
            connection.execute(text("INSERT INTO t (id, v) VALUES (1, 'b')"))
        assert not _turn_is_free(engine)
        connection.rollback()
        assert _turn_is_free(engine)
    raw = engine.raw_connection()
    raw.cursor().execute("INSERT INTO t (v) VALUES ('c')")
    assert not _turn_is_free(engine)
    raw.invalidate()  # closes the DBAPI connection with its transaction open
    assert _turn_is_free(engine)


def test_a_writer_waits_for_the_turn_and_goes_on_when_it_is_given_back(engine):
    order = []
    with engine.connect() as first:
        first.execute(text("INSERT INTO t (v) VALUES ('first')"))

        def second():
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t (v) VALUES ('second')"))
                order.append("second wrote")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        assert order == []
        order.append("first commits")
        first.commit()
        thread.join(10)
    assert order == ["first commits", "second wrote"]


def test_another_process_holding_the_turn_is_waited_for(engine):
    """A separate open of the lock file stands for another process: the write waits for it, not
    in SQLite's busy handler (set to fail at once here), and goes on once it is let go."""
    fd = os.open(f"{engine.url.database}-lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def write():
        with engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
            connection.execute(text("INSERT INTO t (v) VALUES ('x')"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert not done.wait(0.3)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    thread.join(10)
    assert done.is_set()


def test_another_process_holding_the_turn_too_long_fails_the_write_as_sqlite_would(engine, monkeypatch):
    """A process that keeps its write transaction open past the busy timeout (a hung request) does
    not hang the others with it: their write is refused with SQLite's own error, and goes on once
    the turn is free again."""
    monkeypatch.setattr(sqlite_writers, "BUSY_TIMEOUT_SECONDS", 0.2)
    fd = os.open(f"{engine.url.database}-lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with engine.connect() as connection:
            started = time.monotonic()
            with pytest.raises(Exception, match="database is locked") as raised:
                connection.execute(text("INSERT INTO t (v) VALUES ('x')"))
            assert 0.2 <= time.monotonic() - started < 5
            assert isinstance(raised.value.orig, sqlite3.OperationalError)
            connection.rollback()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (v) VALUES ('y')"))
    assert _turn_is_free(engine)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_takes_turns_with_its_parent(engine):
    """A child shares its parent's open lock file (and an flock on it): it must open its own, or
    it would pass a parent that holds the turn. (The parent holds the turn without a transaction
    open: SQLite's connections must not cross a fork.)"""
    engine.dispose()  # no pooled connection crosses the fork
    turns = next(t for t in sqlite_writers._TURNS if t.path == f"{engine.url.database}-lock")
    assert turns.take()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its write waits for the parent's turn
        code = 1
        try:
            os.close(read)
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t (v) VALUES ('child')"))
            os.write(write, repr(time.monotonic()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    time.sleep(0.3)
    given_back = time.monotonic()
    turns.give_back()
    _, status = os.waitpid(pid, 0)
    written = float(os.read(read, 100) or 0)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and written > given_back


def test_a_second_connection_of_the_thread_holding_the_turn_fails_as_sqlite_would(engine, monkeypatch):
    """No deadlock: the thread would wait for itself; after the busy timeout it is refused with
    SQLite's own error, as it was before the turns."""
    monkeypatch.setattr(sqlite_writers, "BUSY_TIMEOUT_SECONDS", 0.2)
    with engine.connect() as first, engine.connect() as second:
        first.execute(text("INSERT INTO t (v) VALUES ('a')"))
        with pytest.raises(Exception, match="database is locked") as raised:
            second.execute(text("INSERT INTO t (v) VALUES ('b')"))
        assert isinstance(raised.value.orig, sqlite3.OperationalError)
        second.rollback()
        first.commit()
        second.execute(text("INSERT INTO t (v) VALUES ('b')"))
        second.commit()
    assert _turn_is_free(engine)


def test_the_apps_sqlite_engine_takes_turns(app):
    from idp.extensions import db

    with app.app_context():
        with db.engine.connect() as connection:
            dbapi_connection = connection.connection.dbapi_connection
            if db.engine.dialect.name != "sqlite":
                pytest.skip("SQLite only")
            assert isinstance(dbapi_connection, sqlite_writers.Connection)
            assert dbapi_connection.turns is not None
