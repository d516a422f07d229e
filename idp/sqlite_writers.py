"""SQLite's writers take turns at a lock file beside the database, which hands the turn on at once.

SQLite lets one connection write at a time. A connection that finds the database locked waits
in SQLite's busy handler, which sleeps between tries (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50,
then 100 ms at a time) instead of waking when the lock is let go: under a few concurrent
writers (a refresh commits a rotation) a write waits far longer than the write before it took,
and the slowest requests wait hundreds of milliseconds for a lock that was free after one.

So every connection of the app's engine takes the turn before its first write of a transaction
and gives it back when the transaction ends: a threading lock among the threads of a process,
then an ``flock`` on ``<database>-lock`` among processes (the workers, the loops, the CLI),
both of which wake the next waiter the moment they are let go. SQLite's own lock is then free
whenever a writer gets to it; its busy handler is left for writers that do not take turns (the
``sqlite3`` shell, another program).

Never a deadlock: the turn is taken only by a connection about to write, which would otherwise
wait for SQLite's write lock (held by the writer whose turn it is), and given back when its
transaction ends, as SQLite's lock is. The wait for a thread of the same process is bounded by
the busy timeout and then fails as SQLite would ("database is locked"): a thread that writes on a
second connection while its first holds a write transaction waits for itself. The wait for another
process is bounded the same way: a process that keeps its write transaction open longer than the
busy timeout (a hung request) makes the others fail as SQLite would have, never hang with it. That
wait tries the ``flock`` without blocking, at most a millisecond apart, so the turn still passes on
within a millisecond of its release. A process that dies gives its ``flock`` back.

What counts as a write: any statement but a SELECT, PRAGMA or EXPLAIN; a statement that leaves no
transaction open (a read after all, DDL outside a transaction) gives the turn back at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref

log = logging.getLogger(__name__)

# SQLite's busy timeout (PRAGMA busy_timeout), and the longest wait for the turn.
BUSY_TIMEOUT_SECONDS = 30
# The longest pause between two tries of a turn another process holds.
_POLL_SECONDS = 0.001
_READS = ("SELECT", "select", "PRAGMA", "pragma", "EXPLAIN", "explain")
_TURNS: weakref.WeakSet = weakref.WeakSet()


class Turns:
    """The turn to write to one database file, for the threads and processes that use it."""

    def __init__(self, database: str) -> None:
        self.path = f"{database}-lock"
        self._fd: int | None = None
        self._threads = threading.Lock()
        self._usable = True
        # Counts the forks: a connection inherited from the parent holds no turn of the child.
        self.generation = 0
        _TURNS.add(self)

    def take(self) -> bool:
        """Wait for the turn; False if it cannot be had (no lock file), so the write goes on
        under SQLite's busy handler as before."""
        if not self._usable:
            return False
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        if not self._threads.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._lock_file(deadline)
        except OSError:
            self._threads.release()
            self._usable = False
            log.warning("no lock file %s: SQLite writers wait in SQLite's busy handler", self.path, exc_info=True)
            return False
        except BaseException:
            self._threads.release()
            raise
        return True

    def _lock_file(self, deadline: float) -> None:
        pause = 0.00005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
            time.sleep(pause)
            pause = min(pause * 2, _POLL_SECONDS)

    def give_back(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _forked(self) -> None:
        # The child shares the parent's open lock file, and with it any flock on it: it opens
        # its own (closing its copy of the parent's leaves the parent's lock alone).
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._threads = threading.Lock()
        self.generation += 1

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _forked_all() -> None:
    for turns in list(_TURNS):
        turns._forked()


os.register_at_fork(after_in_child=_forked_all)


class Connection(sqlite3.Connection):
    """A pysqlite connection that takes its ``turns`` (if given) before it writes."""

    turns: Turns | None = None
    _holding = False
    _generation = 0

    def cursor(self, factory=None):
        return super().cursor(factory or Cursor)

    def _take(self) -> None:
        if self.turns is not None and self.turns.take():
            self._holding = True
            self._generation = self.turns.generation

    def _settle(self) -> None:
        """Give the turn back unless a transaction is open."""
        if self._holding and not self.in_transaction:
            self._give_back()

    def _give_back(self) -> None:
        self._holding = False
        if self._generation == self.turns.generation:
            self.turns.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._settle()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._settle()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._holding:
                self._give_back()

    def __del__(self) -> None:
        if self._holding:
            self._give_back()


class Cursor(sqlite3.Cursor):
    def _write(self, run, sql, *args):
        connection = self.connection
        connection._take()
        try:
            return run(sql, *args)
        finally:
            connection._settle()

    def execute(self, sql, *args):
        if self.connection._holding or sql.startswith(_READS):
            return super().execute(sql, *args)
        return self._write(super().execute, sql, *args)

    def executemany(self, sql, *args):
        if self.connection._holding or sql.startswith(_READS):
            return super().executemany(sql, *args)
        return self._write(super().executemany, sql, *args)

    def executescript(self, script):
        if self.connection._holding:
            return super().executescript(script)
        return self._write(super().executescript, script)


def take_turns(engine) -> None:
    """Make the connections of ``engine`` (SQLite, a database file) take turns to write."""
    from sqlalchemy import event

    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    turns = Turns(os.path.abspath(database))

    @event.listens_for(engine, "do_connect")
    def _connection_class(_dialect, _record, _cargs, cparams):
        cparams.setdefault("factory", Connection)

    @event.listens_for(engine, "connect")
    def _give_turns(dbapi_connection, _record):
        if isinstance(dbapi_connection, Connection):
            dbapi_connection.turns = turns
