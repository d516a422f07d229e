"""SQLite's checkpoints in a loop of their own: what was committed reaches the database file itself
without any commit checkpointing, the app's connections checkpoint only far past what the loop
leaves in the WAL, a database file that is not there stays not there, and the metrics show the
WAL at each pass."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from idp import sqlite_checkpoints


def _in_the_file_alone(database, tmp_path) -> int:
    """The rows of ``notes`` in the database file without its WAL (0 if the table is not there yet)."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(database, copy)
    connection = sqlite3.connect(copy)
    try:
        return connection.execute("SELECT count(*) FROM notes").fetchone()[0]
    except sqlite3.OperationalError:  # no such table: the WAL holds it all
        return 0
    finally:
        connection.close()
        copy.unlink()


@pytest.fixture(params=["plain", "odd"])
def writer(tmp_path, request):
    """A WAL database whose commits never checkpoint, with 200 rows committed; open throughout (the
    last connection to close would checkpoint). Its folder's name is plain, or holds what a URI
    gives a meaning of its own."""
    folder = tmp_path / ("data" if request.param == "plain" else "d%20a?t#a")
    folder.mkdir()
    database = folder / "idp.db"
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    for i in range(200):
        connection.execute("INSERT INTO notes (body) VALUES (?)", (f"note {i} " * 20,))
    yield database, connection
    connection.close()


def test_the_loop_copies_what_was_committed_into_the_database_file(writer, tmp_path):
    database, connection = writer
    assert _in_the_file_alone(database, tmp_path) == 0
    stop = threading.Event()
    loop = threading.Thread(target=sqlite_checkpoints.checkpoint_forever, args=(str(database), stop, 0.01))
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while _in_the_file_alone(database, tmp_path) != 200:
            assert time.monotonic() < deadline, "the loop copied nothing back"
            time.sleep(0.02)
        # What is committed while it runs follows.
        connection.execute("INSERT INTO notes (body) VALUES ('later')")
        while _in_the_file_alone(database, tmp_path) != 201:
            assert time.monotonic() < deadline, "a later commit was not copied back"
            time.sleep(0.02)
    finally:
        stop.set()
        loop.join(timeout=5)
    assert not loop.is_alive()


def test_the_loop_checkpoints_once_more_when_stopped(writer, tmp_path):
    database, _connection = writer
    stop = threading.Event()
    stop.set()
    sqlite_checkpoints.checkpoint_forever(str(database), stop, interval=60)
    assert _in_the_file_alone(database, tmp_path) == 200


def test_a_passive_checkpoint_says_what_it_copied(writer):
    database, _connection = writer
    other = sqlite3.connect(database, isolation_level=None)
    try:
        busy, pages, copied = sqlite_checkpoints.checkpoint(other)
    finally:
        other.close()
    assert busy == 0 and pages > 0 and copied == pages


def test_a_database_file_that_is_not_there_is_an_error_and_stays_not_there(tmp_path):
    missing = tmp_path / "gone.db"
    with pytest.raises(sqlite3.OperationalError):
        sqlite_checkpoints.checkpoint_forever(str(missing), threading.Event(), interval=0.01)
    assert not missing.exists()


def test_the_app_s_connections_leave_the_checkpoints_to_the_loop(tmp_path, monkeypatch):
    """In every process (the workers', the CLI's): a commit checkpoints only past FALLBACK_PAGES."""
    from idp import create_app
    from idp.extensions import db

    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app({"ENV": "production", "ISSUER": "http://127.0.0.1", "SECRET_KEY": "s" * 64, "REDIS_URL": "",
                      "MAIL_SERVER": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'idp.db'}"})
    with app.app_context():
        assert sqlite_checkpoints.database_file(db.engine) == str(tmp_path / "idp.db")
        threshold = db.session.execute(text("PRAGMA wal_autocheckpoint")).scalar()
        db.session.remove()
        db.engine.dispose()
    assert threshold == sqlite_checkpoints.FALLBACK_PAGES


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://postgres@127.0.0.1/test"])
def test_no_loop_where_there_is_no_database_file(url):
    assert sqlite_checkpoints.database_file(create_engine(url)) is None


def _wal_pages(state: str):
    from idp.telemetry.metrics import REGISTRY

    return REGISTRY.get_sample_value("idp_sqlite_wal_pages", {"state": state})


def test_the_metrics_show_the_wal_and_what_a_reader_keeps_from_being_copied_back(writer, tmp_path):
    database, connection = writer
    stop = threading.Event()
    stop.set()
    sqlite_checkpoints.checkpoint_forever(str(database), stop, interval=60)
    assert _wal_pages("written") > 0 and _wal_pages("not_checkpointed") == 0
    # A reader that keeps its snapshot: what is committed after it stays in the WAL.
    reader = sqlite3.connect(database, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM notes").fetchone()
        for i in range(50):
            connection.execute("INSERT INTO notes (body) VALUES (?)", (f"later {i} " * 20,))
        sqlite_checkpoints.checkpoint_forever(str(database), stop, interval=60)
        assert _wal_pages("not_checkpointed") > 0
        reader.execute("COMMIT")
        sqlite_checkpoints.checkpoint_forever(str(database), stop, interval=60)
        assert _wal_pages("not_checkpointed") == 0
    finally:
        reader.close()
