"""SQLite's checkpoints in a thread of their own while `idp serve` runs, so that a request's
commit seldom waits for one.

In WAL mode a commit appends its pages to ``<database>-wal``; a checkpoint copies them back into
the database file and syncs it, and the WAL starts again from its beginning once everything in
it is copied back and no reader still reads from it. By default the commit that takes the WAL
past 1,000 pages does the checkpoint itself (``wal_autocheckpoint``): a refresh under load waited
for a sync of the database file every few dozen commits, holding the turn to write
(``sqlite_writers``), and every writer behind it waited too.

``idp serve`` runs ``checkpoint_forever`` as one of the loops of the worker whose turn it is
(``ops.serving``): every ``INTERVAL`` a passive checkpoint on a connection of its own, which
neither waits for nor holds up readers and writers (it copies what no reader still needs, and the
next pass copies the rest). The threshold of the app's connections, in every process (the
workers', the CLI's), is raised to ``FALLBACK_PAGES`` (``idp._sqlite_pragmas``), so that a commit
checkpoints only when the loop is away (its worker died and another has not yet taken the turn
over, or no `idp serve` runs), and the WAL cannot grow without bound. Under steady writes a pass
seldom ends with the whole WAL copied back before the next commit, which is when the WAL could
start again from its beginning: it then grows to FALLBACK_PAGES, where a commit's checkpoint
(with little left to copy) lets it start again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

from .telemetry import metrics

log = logging.getLogger(__name__)

# How often the loop checkpoints. A refresh adds some 15 pages to the WAL, so at a thousand
# refreshes a second a pass copies back about 1,500 pages; a pass with nothing to copy costs
# a look at the WAL's index.
INTERVAL = 0.1
# The app's connections' wal_autocheckpoint: far above what the loop leaves in the WAL
# between two passes, so that commits checkpoint only while it is away.
FALLBACK_PAGES = 10_000


def database_file(engine) -> str | None:
    """The database file of ``engine``, when it is SQLite on a file; else None."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int] | None:
    """A passive checkpoint: (busy, pages in the WAL, pages of them copied back), or None when
    another checkpoint was under way (another instance's loop, a commit past the threshold)."""
    try:
        row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return None
        raise
    return tuple(row) if row else None


def checkpoint_forever(database: str, stop: threading.Event, interval: float = INTERVAL) -> None:
    """Checkpoint ``database`` every ``interval`` seconds until ``stop`` is set, and once more then."""
    # mode=rw: a database file that is not there is an error, not a new empty file. The path is
    # quoted for the URI (a '%', '?' or '#' in it would be read as the URI's own).
    connection = sqlite3.connect(f"{Path(database).as_uri()}?mode=rw", uri=True, isolation_level=None,
                                 check_same_thread=False)
    try:
        while not stop.wait(interval):
            _pass(connection)
        _pass(connection)
    finally:
        connection.close()


def _pass(connection: sqlite3.Connection) -> None:
    """A checkpoint, and what it found in the WAL told to the metrics (idp_sqlite_wal_pages)."""
    done = checkpoint(connection)
    if done is not None and done[1] >= 0:  # -1: the database is not in WAL mode
        metrics.sqlite_wal(done[1], done[2])
