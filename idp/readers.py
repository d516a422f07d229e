"""Reads outside a transaction run on connections kept beside the engine's pool.

A read that needs no transaction (introspection's look-up of a token, a machine token's
revocation) spent more on the pool than on its SELECT. On SQLite: the checkout and check-in,
their records and events, the queue's lock, and the rollback on return; a pool guards nothing
such a read needs there (no server, no round trip, no limit on connections). On PostgreSQL: the
round trips around the SELECT in a transaction (BEGIN, the rollback on return, and the pool's
ping of a connection that waited long: ``live_connections``), each as long as the SELECT's.

So those reads take a DB-API connection of the engine's from a stack of their own, last
returned first (on SQLite its page cache the warmest), and put it back after the read. Each
connection is made by the engine's pool, with every ``connect`` listener's settings, and then
detached from it; on PostgreSQL it reads in autocommit, each SELECT on its own, so none leaves a
transaction open. The stack holds as many connections as reads ran at once, at most one per
thread. A connection on which a statement failed is closed, not kept (``unit_of_work.KeptStatements``
tries a read that failed because the database closed a kept connection once more, on a new
one). An idle connection that the database has closed meanwhile (a restart, an administrator
ending its backend: the server says so, or hangs up, and the socket turns readable) is closed
when it is taken instead of being used: one poll of its socket, no round trip, so a write, which
is never tried twice, is not sent on it. On PostgreSQL a statement on such a connection may also
write, committed as it runs (the refresh rotation's claim with its successor).

The stack goes with the pool. When the engine is disposed, its connections are closed with
the pool's, before anything else is done to the database (a test's fresh database file); a
connection in use then is closed when it is given back. A forked process (``idp serve``'s
workers) leaves its parent's connections open and unused, as it does its inherited pools'
(``engine.dispose(close=False)``), and makes its own.
"""

from __future__ import annotations

import os
import weakref

from sqlalchemy import event

from .live_connections import closed_by_server


class Readers:
    """The idle read connections of one engine in one process, the last one given back on top."""

    def __init__(self) -> None:
        self._idle: list = []
        self._closed = False

    def take(self):
        """The idle connection given back last that the database has not closed, or None when
        none is idle (those it closed are closed here)."""
        while True:
            try:
                connection = self._idle.pop()
            except IndexError:  # none left, or another thread took the last one
                return None
            if not closed_by_server(connection):
                return connection
            self.discard(connection)

    @staticmethod
    def made(pooled, autocommit: bool):
        """The DB-API connection of a connection just checked out of the pool, which is no longer
        the pool's to count or return (the pool makes another when it needs one); in autocommit
        if ``autocommit`` (the DB-API drivers' attribute; not SQLite's, which begins no
        transaction for a read)."""
        pooled.detach()
        connection = pooled.dbapi_connection
        if autocommit:
            connection.autocommit = True
        return connection

    def give_back(self, connection) -> None:
        """Keep ``connection`` for the next read, with no transaction left open on it (closed
        instead if the engine was disposed meanwhile)."""
        if getattr(connection, "in_transaction", False):  # SQLite's; PostgreSQL's reads are in autocommit
            connection.rollback()
        if self._closed:
            self.discard(connection)
        else:
            self._idle.append(connection)

    @staticmethod
    def discard(connection) -> None:
        """Close a connection instead of keeping it (a statement failed on it, or its engine was disposed)."""
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - it is dropped either way
            pass

    def close(self) -> None:
        """Close the idle connections now, and those in use once given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self.discard(connection)


_READERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# A forked process's copies of its parent's connections: kept, never used and never closed.
_INHERITED: list = []


def of(engine) -> Readers:
    """The read connections of ``engine`` in this process."""
    readers = _READERS.get(engine)
    if readers is None:
        if not event.contains(engine, "engine_disposed", _disposed):
            event.listen(engine, "engine_disposed", _disposed)
        readers = _READERS.setdefault(engine, Readers())
    return readers


def _disposed(engine) -> None:
    readers = _READERS.pop(engine, None)
    if readers is not None:
        readers.close()


def _forked() -> None:
    for readers in list(_READERS.values()):
        _INHERITED.extend(readers._idle)  # noqa: SLF001 - this module's own
        readers._idle = []  # noqa: SLF001
    _READERS.clear()


os.register_at_fork(after_in_child=_forked)
