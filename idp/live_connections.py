"""Whether a PostgreSQL connection that waited in the pool is still served, without a round trip
when it waited a short while.

SQLAlchemy's pre-ping sends a statement at every checkout: a round trip before each request's
first statement, as long as the statement's own. A connection is lost in two ways:

- **the server closed it** (a restart, an administrator ending its backend, an idle-session
  timeout): the server says so before it hangs up, and the connection's socket turns readable
  while no statement runs on it. One poll of the socket tells, with no round trip
  (``closed_by_server``); the connections kept beside the pool (``readers``) are checked so too.
- **something between dropped it without a word** (a firewall's or a NAT's idle timeout): only
  a statement finds out. That happens to connections left idle for minutes, so a connection idle
  longer than ``PING_AFTER`` seconds is pinged at its checkout, as before.

A connection found lost raises ``DisconnectionError`` in the pool's checkout event: the pool
replaces it with a new one, which is not checked again (or the database away is the request's
503). ``watch`` puts this in place of ``pool_pre_ping`` on a PostgreSQL engine; SQLite's
connections need neither.

What a ping at every checkout caught and a poll does not: the server's notice travels after the
server has decided to end the backend, so a checkout in between (well under a millisecond on one
machine) takes a connection that is about to fail, and a peer that vanished without a word (a
failover that moves an address, a crashed host) shows only to a statement. The request's
statement then fails as a lost connection: a 503, a kept read tried again on a new connection,
at most once for each connection.
"""

from __future__ import annotations

import select
import time

import psycopg
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

# Seconds a connection may wait in the pool and be used without a ping.
PING_AFTER = 30.0
_IDLE_SINCE = "idp.idle_since"
_FRESH = "idp.fresh"


def closed_by_server(connection) -> bool:
    """Whether the server ended an idle PostgreSQL connection (psycopg's): it is closed, or its
    socket has something to read while no statement runs on it (the server's notice that it ends
    the backend, or its hang-up). A readable socket for another reason (a notice nobody asked
    for) only costs a new connection. Never for SQLite's, which have no server."""
    pgconn = getattr(connection, "pgconn", None)
    if pgconn is None:
        return False
    try:
        if connection.closed:
            return True
        poll = select.poll()  # not select.select: it refuses descriptors from 1024 on
        poll.register(pgconn.socket, select.POLLIN)
        return bool(poll.poll(0))
    except (OSError, ValueError, psycopg.Error):  # a socket that cannot be polled: not to be used
        return True


def watch(engine) -> None:
    """Check the connections of ``engine``'s pool at their checkout as the module says."""
    dialect = engine.dialect

    def checkout(dbapi_connection, record, proxy) -> None:  # noqa: ARG001 - the pool's event
        if record.info.pop(_FRESH, False):  # made for this checkout: nothing to check, as pre-ping
            return
        if closed_by_server(dbapi_connection):
            raise DisconnectionError("the database closed this connection")
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since <= PING_AFTER:
            return
        try:
            dialect.do_ping(dbapi_connection)  # as pre-ping does
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError("the connection did not answer a ping") from exc
            raise

    event.listen(engine, "connect", _made)
    event.listen(engine, "checkin", _rested)
    event.listen(engine, "checkout", checkout)


def _made(dbapi_connection, record) -> None:
    """A connection just made: its checkout does not check it (the pool would give up after a
    second connection found lost, with an error that is not the database's)."""
    record.info[_FRESH] = True
    _rested(dbapi_connection, record)


def _rested(dbapi_connection, record) -> None:  # noqa: ARG001 - the pool's event
    """A connection made, or given back to the pool: it waits from now."""
    record.info[_IDLE_SINCE] = time.monotonic()
