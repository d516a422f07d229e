"""One unit of work per request, and the short transactions that outlive a failed step.

The request's database session is the unit of work. ``init_app`` commits it once the view
answered below 400 and rolls it back when the view raised or answered 400 or more (a
refused step, an error page). Views and flows never commit.

What must be kept although the step fails (failed tries, lockouts, the audit entry of a
failure, a spent CAPTCHA) is written by the service that decides it, inside ``kept()``,
which commits the request's session at that point of decision, before the service
raises; the rollback at the end of the request then discards nothing of it. This is safe
because a step checks before it changes: at a refusal nothing else of the step is pending
(keep it so: a step that changed something it must not keep raises before changing it, or
outside ``kept()``). Why not a second connection for the record: on SQLite a second
connection cannot write while the request's session holds the write lock (any flush takes
it) and would wait for the busy timeout; one session and an early commit work on SQLite
and PostgreSQL alike.

Work that must wait for a commit (counting and logging what a transaction wrote: metrics
of audit events and queued mail) is registered with ``after_commit()`` and runs once the
transaction open now commits, be it the request's commit or a ``kept()`` one; a rollback drops
it, so a refused step's discarded writes are never counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from .extensions import db
from .kept import Kept

log = logging.getLogger(__name__)
_AFTER_COMMIT = "idp.after_commit"


@contextmanager
def kept():
    """Commit what the block writes at once, although the request will fail (see the module docstring)."""
    try:
        yield
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def after_commit(callback: Callable[[], object]) -> None:
    """Run ``callback`` once the database session's current transaction commits (never after
    a rollback). It must not use the database: the transaction is over."""
    db.session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(db.session, "after_commit")
def _run_after_commit(session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # noqa: BLE001 - the change is committed; a notice that fails is logged
            log.exception("after-commit work failed")


@event.listens_for(db.session, "after_transaction_end")
def _drop_uncommitted(session, transaction) -> None:
    # A committed transaction ran its callbacks above; any other end of the outermost one
    # (a rollback, a closed session) drops them. A savepoint's end leaves them to its parent.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


def commit() -> None:
    """Commit the unit of work (and run what waited for it)."""
    db.session.commit()


def rollback() -> None:
    """Discard the unit of work (a refused or failed request)."""
    db.session.rollback()


def abandon() -> None:
    """Discard the unit of work when the database may be away: a rollback that fails as well
    (its connection is gone) leaves nothing of the transaction behind either."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - whatever the driver raises, there is nothing left to undo
        pass


def _session_holds_work() -> bool:
    """Whether the request's session has begun a transaction or holds changes (without making
    the session when it was never used)."""
    if not db.session.registry.has():
        return False
    session = db.session()
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)


class _Prepared:
    """A read-only statement compiled once for a dialect, run on a pooled DB-API connection: the
    SQL, how its parameters are bound, and how each column's value is read."""

    __slots__ = ("sql", "names", "positional", "defaults", "binds", "processors", "keys")

    def __init__(self, compiled, statement, dialect):
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
        # A value written into the statement (``.limit(1)``, ``== 5``) is bound as SQLAlchemy binds it.
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.binds = {name: processor for name, bind in compiled.binds.items()
                      if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        self.processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                                for column in statement.selected_columns)
        self.keys = None  # the result's keys, as the driver names the columns (read on first use)

    @classmethod
    def of(cls, statement, dialect) -> _Prepared | None:
        """The prepared statement; None for one that must run on a SQLAlchemy connection: with
        expanding or escaped parameters, or that loads ORM entities."""
        if any(isinstance(described["expr"], type) for described in statement.column_descriptions):
            return None
        compiled = statement.compile(dialect=dialect)
        if compiled.escaped_bind_names or any(bind.expanding or bind.literal_execute
                                              for bind in compiled.binds.values()):
            return None
        return cls(compiled, statement, dialect)

    def parameters(self, values: dict):
        bound = {}
        for name in self.names:
            value = values[name] if name in values else self.defaults[name]
            processor = self.binds.get(name)
            bound[name] = processor(value) if processor is not None else value
        return tuple(bound[name] for name in self.names) if self.positional else bound

    def row(self, row) -> dict:
        return {key: processor(value) if processor is not None else value
                for key, processor, value in zip(self.keys, self.processors, row)}


_PREPARED = Kept()


def _prepared(statement, dialect) -> _Prepared | None:
    key = (statement, dialect)
    try:
        return _PREPARED[key]
    except KeyError:
        # A few statements, built once each at import; a bound for any other.
        return _PREPARED.keep(key, _Prepared.of(statement, dialect))


def _read_pooled(statement, parameters: dict):
    """The first row of a read-only statement (a dict of its columns, as the result maps them) or
    None, on a connection of the engine's pool with no SQLAlchemy connection around it: the
    statement is compiled once, and on PostgreSQL read outside a transaction (autocommit), so
    neither a BEGIN nor the pool's ROLLBACK on return costs a round trip. The connection is
    checked out as the pool checks it (pre-ping: a database restart is recovered from); a DB-API
    error, at the check-out too, is raised as SQLAlchemy raises it (the database away is a 503),
    the connection invalidated on a disconnect. With
    statement listeners on the engine (a meter, a test that watches statements) it runs on a
    SQLAlchemy connection, where they see it."""
    engine = db.engine
    dialect = engine.dialect
    prepared = _prepared(statement, dialect)
    if prepared is None or engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute:
        with engine.connect() as connection:
            return connection.execute(statement, parameters).mappings().first()
    bound = prepared.parameters(parameters)
    try:
        connection = engine.raw_connection()
    except dialect.loaded_dbapi.Error as exc:  # no connection could be had: the database is away
        raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=dialect.is_disconnect(exc, None, None),
                                  dialect=dialect) from exc
    driver = connection.driver_connection
    toggle = dialect.driver == "psycopg" and not driver.autocommit
    cursor = None
    try:
        try:
            if toggle:
                driver.autocommit = True
            cursor = connection.cursor()
            cursor.execute(prepared.sql, bound)
            row = cursor.fetchone()
            if prepared.keys is None:
                prepared.keys = tuple(column[0] for column in cursor.description)
            cursor.close()
        finally:
            if toggle and not driver.closed:
                driver.autocommit = False
    except dialect.loaded_dbapi.Error as exc:
        disconnect = dialect.is_disconnect(exc, connection.dbapi_connection, cursor)
        if disconnect:
            connection.invalidate(exc)
        raise DBAPIError.instance(prepared.sql, bound, exc, dialect.loaded_dbapi.Error,
                                  connection_invalidated=disconnect, dialect=dialect) from exc
    finally:
        connection.close()  # back to the pool (or away, when invalidated)
    return None if row is None else prepared.row(row)


def read_first(statement, parameters: dict):
    """The first row (a mapping) of a read-only statement, or None. It runs in the request's
    session when that has begun a transaction or holds changes (the read sees what the request
    wrote); else on a pooled connection of its own, returned at once (``_read_pooled``), so
    that a request that only reads (introspection) makes no session and has no transaction to
    commit."""
    if _session_holds_work():
        return db.session.execute(statement, parameters).mappings().first()
    return _read_pooled(statement, parameters)


def read_scalar(statement, parameters: dict | None = None):
    """The first column of the first row of a read-only statement, or None (as ``read_first``)."""
    if _session_holds_work():
        return db.session.scalar(statement, parameters)
    row = _read_pooled(statement, parameters or {})
    return None if row is None else next(iter(row.values()))


def finish(response):
    """End the request's unit of work by its answer: commit below 400, else roll back."""
    if not db.session.registry.has():
        return response  # no session was made: the request used no database (a client-credentials token)
    if not db.session().in_transaction() and _AFTER_COMMIT not in db.session.info:
        return response  # nothing open to end
    if response.status_code < 400:
        commit()
    else:
        rollback()
    return response


def _teardown(exc):
    if exc is not None:
        rollback()


def init_app(app) -> None:
    app.after_request(finish)
    app.teardown_request(_teardown)
