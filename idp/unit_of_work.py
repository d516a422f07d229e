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

from flask import g
from sqlalchemy import Connection, Insert, Select, Update, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from . import live_connections
from . import readers as kept_readers
from .extensions import db
from .kept import Kept

log = logging.getLogger(__name__)
_AFTER_COMMIT = "idp.after_commit"
_WRITES_AFTER = "idp_writes_after"


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
    """A statement compiled once for a dialect, run on a pooled DB-API connection: the SQL, how its
    parameters are bound, and how each column's value is read (a SELECT's, or what an UPDATE
    returns)."""

    __slots__ = ("sql", "names", "positional", "defaults", "binds", "processors", "keys")

    def __init__(self, compiled, columns, dialect):
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
        # A value written into the statement (``.limit(1)``, ``== 5``) is bound as SQLAlchemy binds it.
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.binds = {name: processor for name, bind in compiled.binds.items()
                      if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
        self.processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                                for column in columns)
        self.keys = None  # the result's keys, as the driver names the columns (read on first use)

    @classmethod
    def of(cls, statement, dialect, column_keys=None) -> _Prepared | None:
        """The prepared statement (an INSERT's for the ``column_keys`` it is given); None for one that
        must run on a SQLAlchemy connection: with expanding or escaped parameters, or that loads ORM
        entities."""
        if isinstance(statement, Select):
            if any(isinstance(described["expr"], type) for described in statement.column_descriptions):
                return None
            columns = statement.selected_columns
        else:
            columns = statement.exported_columns  # what it returns
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if compiled.escaped_bind_names or any(bind.expanding or bind.literal_execute
                                              for bind in compiled.binds.values()):
            return None
        if compiled.insert_prefetch or compiled.update_prefetch:
            return None  # a column's default computed in Python, which SQLAlchemy's execution would call
        return cls(compiled, columns, dialect)

    def parameters(self, values: dict):
        bound = {}
        for name in self.names:
            value = values[name] if name in values else self.defaults[name]
            processor = self.binds.get(name)
            bound[name] = processor(value) if processor is not None else value
        return tuple(bound[name] for name in self.names) if self.positional else bound

    def values(self, row) -> tuple:
        return tuple(processor(value) if processor is not None else value
                     for processor, value in zip(self.processors, row))


_PREPARED = Kept()


def _prepared(statement, dialect, column_keys=None) -> _Prepared | None:
    key = (statement, dialect, column_keys)
    try:
        return _PREPARED[key]
    except KeyError:
        # A few statements, built once each at import; a bound for any other.
        return _PREPARED.keep(key, _Prepared.of(statement, dialect, column_keys))


def _column_keys(statement, parameters: dict):
    """What an INSERT or UPDATE is compiled for, as SQLAlchemy's execution compiles it: the names
    of its parameters (the columns it sets where it names none itself)."""
    return tuple(sorted(parameters)) if isinstance(statement, (Insert, Update)) else None


def _listened(engine) -> bool:
    """Whether statement listeners are on the engine (a meter, a test that watches statements):
    then statements run on a SQLAlchemy connection, where they see them."""
    return bool(engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute)


def _checkout(engine):
    """A connection of the engine's pool, checked out as the pool checks it (``live_connections``:
    a database restart is recovered from); no connection is SQLAlchemy's error (the database away
    is a 503)."""
    dialect = engine.dialect
    try:
        return engine.raw_connection()
    except dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy_error(dialect, None, None, exc) from exc


def _as_sqlalchemy_error(dialect, sql, bound, exc, dbapi_connection=None) -> DBAPIError:
    """A DB-API error as SQLAlchemy raises it, ``connection_invalidated`` when it is a disconnect
    or the connection's prepared statements went stale (``_stale_plan``)."""
    lost = dialect.is_disconnect(exc, dbapi_connection, None) or _stale_plan(exc)
    return DBAPIError.instance(sql, bound, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                               dialect=dialect)


_STALE_PLAN = "cached plan must not change result type"


def _stale_plan(exc) -> bool:
    """PostgreSQL's refusal of a statement that psycopg prepared on the connection (after five
    runs of it) before a migration changed the type of a column it returns, a longer VARCHAR
    say: "cached plan must not change result type". psycopg keeps the statement, so the
    connection would fail it for good: it counts as lost, as a disconnect does (closed, and a
    read outside a transaction tried again on a new connection)."""
    if getattr(exc, "sqlstate", None) != "0A000":  # feature_not_supported: this and others
        return False
    diag = getattr(exc, "diag", None)  # where the server raised it, whatever its messages' language
    return getattr(diag, "source_function", None) == "RevalidateCachedQuery" or _STALE_PLAN in str(exc)


def _lost_with_stale_plans(context) -> None:
    """SQLAlchemy's ``handle_error``: a statement it ran that met stale prepared statements
    (``_stale_plan``) loses its connection, and the pool its other connections of the moment
    (prepared before the migration too), as on a disconnect."""
    if _stale_plan(context.original_exception):
        context.is_disconnect = True


def _failed(engine, connection, sql, bound, exc) -> DBAPIError:
    """A DB-API error as SQLAlchemy raises it, the connection (the pool's, or a SQLAlchemy
    connection) invalidated on a disconnect."""
    error = _as_sqlalchemy_error(engine.dialect, sql, bound, exc, _pooled(connection).dbapi_connection)
    if error.connection_invalidated:
        connection.invalidate(exc)
    return error


def _pooled(connection):
    """The pool's connection: ``connection`` itself, or the one under a SQLAlchemy connection."""
    return connection.connection if isinstance(connection, Connection) else connection


def _run(engine, connection, prepared: _Prepared, parameters: dict) -> Executed:
    """Run ``prepared`` on the DB-API connection of ``connection`` (the pool's, or the one under a
    SQLAlchemy connection): its rows changed and its first row, errors raised as SQLAlchemy's."""
    bound = prepared.parameters(parameters)
    try:
        return _statement(_pooled(connection), prepared, bound)
    except engine.dialect.loaded_dbapi.Error as exc:
        raise _failed(engine, connection, prepared.sql, bound, exc) from exc


def _statement(connection, prepared: _Prepared, bound) -> Executed:
    """Run ``prepared`` with its ``bound`` parameters on a DB-API connection (or the pool's): the
    rows it changed and its first row (the columns' names kept the first time)."""
    cursor = connection.cursor()
    try:
        cursor.execute(prepared.sql, bound)
        row = cursor.fetchone() if prepared.processors else None
        if row is not None and prepared.keys is None:
            prepared.keys = tuple(column[0] for column in cursor.description)
        return Executed(cursor.rowcount, None if row is None else prepared.values(row), prepared.keys)
    finally:
        cursor.close()


def _read_outside_session(statement, parameters: dict) -> Executed:
    """What a read-only statement read (its first row), with no SQLAlchemy connection around it:
    the statement is compiled once and runs on a DB-API connection of ``readers``, kept beside the
    engine's pool (``KeptStatements``): no checkout, no check-in and, on PostgreSQL, no ping, so
    the read is the SELECT's one round trip, outside a transaction (autocommit). A DB-API error is
    raised as SQLAlchemy raises it. With statement listeners on the engine it runs on a SQLAlchemy
    connection, where they see it."""
    engine = db.engine
    dialect = engine.dialect
    prepared = _prepared(statement, dialect)
    if prepared is None or _listened(engine):
        with engine.connect() as connection:
            return _executed(connection.execute(statement, parameters))
    return KeptStatements.once(engine, prepared, parameters, again=True)


def _executed(result) -> Executed:
    """What a statement SQLAlchemy ran did, as ``Executed``."""
    rowcount = getattr(result, "rowcount", -1)  # an ORM SELECT's result counts nothing
    if not getattr(result, "returns_rows", True):
        return Executed(rowcount, None)
    keys, row = tuple(result.keys()), result.first()
    return Executed(rowcount, None if row is None else tuple(row), keys)


class Executed:
    """What a statement on a ``PooledTransaction`` or in the session (``execute``) did: the rows
    it changed, and its first row (a SELECT's, or what an UPDATE returned) as a tuple of its
    columns' values, or as a dict of them by name (``mapping``)."""

    __slots__ = ("rowcount", "_row", "_keys")

    def __init__(self, rowcount: int, row, keys=()):
        self.rowcount = rowcount
        self._row = row
        self._keys = keys

    def first(self):
        return self._row

    def mapping(self) -> dict | None:
        return None if self._row is None else dict(zip(self._keys, self._row))


class PooledTransaction:
    """One transaction on a connection of the engine's pool with no SQLAlchemy connection around
    it, for a few statements run on every request (a refresh token's rotation): each compiled
    once, executed with its parameters bound as SQLAlchemy binds them and its first row read as
    SQLAlchemy reads it. The driver begins the transaction with the first statement, as under
    SQLAlchemy (SQLite's, PostgreSQL's); ``commit`` commits it, ``close`` returns the connection to
    the pool, which rolls back what was not committed. Errors are SQLAlchemy's (``_failed``).

    ``usable()`` says whether the engine can run one: not while statement listeners are on it,
    which must see the statements (run them on a SQLAlchemy connection then)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._connection = None

    @staticmethod
    def usable(engine) -> bool:
        return not _listened(engine)

    def execute(self, statement, parameters: dict) -> Executed:
        engine = self.engine
        column_keys = _column_keys(statement, parameters)
        prepared = _prepared(statement, engine.dialect, column_keys)
        if prepared is None:
            raise ValueError("a statement that only a SQLAlchemy connection runs")
        if self._connection is None:
            self._connection = _checkout(engine)
        return _run(engine, self._connection, prepared, parameters)

    def commit(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            connection.commit()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise _failed(self.engine, connection, None, None, exc) from exc

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()  # back to the pool, rolled back (or away, when invalidated)


class KeptStatements:
    """Statements outside a transaction on a connection kept beside the engine's pool
    (``readers``): no checkout and no check-in, and on PostgreSQL no ping, so a statement costs
    its own round trip and nothing more. Each statement stands on its own: on PostgreSQL it is
    committed as it runs (autocommit), so a write that must be atomic is one statement; on
    SQLite, which would begin a transaction for a write, only reads.

    The connection is taken at the first statement and given back by ``close``; a statement
    that fails closes it instead, its error raised as SQLAlchemy raises it. A first statement
    that may run twice (``again``: a read) and fails because the database closed the kept
    connection (a restart, a server that ends idle connections) is tried once more on a new
    connection, checked out as the pool checks it. A write never is: it may have been committed
    (a kept connection that the database closed while it was idle is not taken: ``readers``)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._readers = kept_readers.of(engine)
        self._connection = None
        self._autocommit = self.write(engine)

    @staticmethod
    def write(engine) -> bool:
        """Whether a write may be one of the statements: where they commit as they run (not on
        SQLite, where a write would begin a transaction that nothing commits)."""
        return engine.dialect.name != "sqlite"

    @classmethod
    def once(cls, engine, prepared: _Prepared, parameters: dict, again: bool = False) -> Executed:
        """One statement on a kept connection, given back after it (``run``)."""
        statements = cls(engine)
        try:
            return statements.run(prepared, prepared.parameters(parameters), again)
        finally:
            statements.close()

    def execute(self, statement, parameters: dict) -> Executed:
        prepared = _prepared(statement, self.engine.dialect, _column_keys(statement, parameters))
        if prepared is None:
            raise ValueError("a statement that only a SQLAlchemy connection runs")
        read = isinstance(statement, Select)
        if not read and not self._autocommit:
            raise ValueError("SQLite's kept connections only read: a write would begin a transaction nothing commits")
        return self.run(prepared, prepared.parameters(parameters), again=read)

    def run(self, prepared: _Prepared, bound, again: bool = False) -> Executed:
        if self._connection is not None:
            return self._on(self._connection, prepared, bound)
        connection = self._readers.take()
        if connection is not None:
            try:
                return self._on(connection, prepared, bound)
            except DBAPIError as error:
                if not (again and error.connection_invalidated):
                    raise
        connection = self._readers.made(_checkout(self.engine), autocommit=self._autocommit)
        return self._on(connection, prepared, bound)

    def _on(self, connection, prepared: _Prepared, bound) -> Executed:
        dialect = self.engine.dialect
        try:
            executed = _statement(connection, prepared, bound)
        except dialect.loaded_dbapi.Error as exc:
            error = _as_sqlalchemy_error(dialect, prepared.sql, bound, exc, connection)
            self._drop(connection)
            raise error from exc
        except BaseException:
            self._drop(connection)
            raise
        self._connection = connection
        return executed

    def _drop(self, connection) -> None:
        self._connection = None
        self._readers.discard(connection)

    def commit(self) -> None:
        """Nothing to commit: each statement was committed as it ran."""

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._readers.give_back(connection)


def execute(statement, parameters: dict) -> Executed:
    """Run a Core statement (an INSERT or UPDATE of a table, a SELECT of columns) in the request's
    session, as ``db.session.execute`` would: in its transaction (begun if need be), after its
    pending ORM changes are flushed, a DB-API error raised as SQLAlchemy raises it (the connection
    invalidated on a disconnect). But compiled once and run on the DB-API connection under the
    session's, with no SQLAlchemy execution context and result around it: the few statements of
    every sign-in step (a flow read and written, an audit event appended) cost several times
    their SQL through those. A statement that only SQLAlchemy can run (expanding parameters, a
    column default computed in Python), and every statement while listeners watch the engine,
    goes through ``db.session.execute``."""
    session = db.session()
    engine = session.get_bind()
    column_keys = _column_keys(statement, parameters)
    prepared = None if _listened(engine) else _prepared(statement, engine.dialect, column_keys)
    if prepared is None:
        return _executed(session.execute(statement, parameters))
    if session.autoflush:
        session.flush()  # what the statement reads or writes sees the request's changes (none: nothing done)
    return _run(engine, session.connection(), prepared, parameters)


def read_first(statement, parameters: dict):
    """The first row (a mapping) of a read-only statement, or None. It runs in the request's
    session when that has begun a transaction or holds changes (the read sees what the request
    wrote); else on a connection of its own, given back at once (``_read_outside_session``), so
    that a request that only reads (introspection) makes no session and has no transaction to
    commit."""
    if _session_holds_work():
        return db.session.execute(statement, parameters).mappings().first()
    return _read_outside_session(statement, parameters).mapping()


def read_row(statement, parameters: dict):
    """The first row of a read-only statement as a tuple of its columns, or None; where it runs
    as ``read_first``."""
    if _session_holds_work():
        return execute(statement, parameters).first()
    return _read_outside_session(statement, parameters).first()


def read_scalar(statement, parameters: dict | None = None):
    """The first column of the first row of a read-only statement, or None (as ``read_first``)."""
    if _session_holds_work():
        return db.session.scalar(statement, parameters)
    row = _read_outside_session(statement, parameters or {}).first()
    return None if row is None else row[0]


def committed_alone(statement, parameters: dict) -> Executed | None:
    """Run a write statement on its own, committed as it runs, where that costs its one round trip
    and nothing more: on a kept connection in autocommit (``KeptStatements``), when the request's
    session holds nothing (the write needs nothing the request did, and takes nothing of it
    along) and the database commits statements as they run (PostgreSQL). None, with nothing
    run, elsewhere (SQLite, a session with work, statement listeners on the engine, a statement
    only SQLAlchemy runs): the caller writes through the session. A write is never tried twice:
    it may have been committed. A kept connection that the database closed while it was idle is
    left for a new one before the write is sent (``readers``); one that fails as the write is
    sent is a 503.
    Committed before the request's answer is made: a failure after it (a 503) keeps the write."""
    engine = db.engine
    if not KeptStatements.write(engine) or _listened(engine) or _session_holds_work():
        return None
    prepared = _prepared(statement, engine.dialect, _column_keys(statement, parameters))
    if prepared is None:  # only SQLAlchemy runs it (a column default computed in Python)
        return None
    return KeptStatements.once(engine, prepared, parameters)


def write_after(statement, parameters: dict) -> None:
    """Write once the request has ended its unit of work (``finish``, an answer below 400), in a
    transaction of its own: a write the request needs nothing of, which must not hold its rows
    while the request takes others (a browser's "last seen" holds its own session row, which an
    end of the account's sessions takes in the order of their ids). Left undone, with a line in
    the log, when the database refuses it: the request's answer stands."""
    g.setdefault(_WRITES_AFTER, []).append((statement, parameters))


def finish(response):
    """End the request's unit of work by its answer: commit below 400, else roll back; then what
    waited for it (``write_after``)."""
    writes = g.pop(_WRITES_AFTER, None)
    _end_by(response)
    if writes and response.status_code < 400:
        for statement, parameters in writes:
            _write_alone(statement, parameters)
    return response


def _end_by(response) -> None:
    if not db.session.registry.has():
        return  # no session was made: the request used no database (a client-credentials token)
    if not db.session().in_transaction() and _AFTER_COMMIT not in db.session.info:
        return  # nothing open to end
    if response.status_code < 400:
        commit()
    else:
        rollback()


def _write_alone(statement, parameters: dict) -> None:
    try:
        if committed_alone(statement, parameters) is None:
            with kept():
                execute(statement, parameters)
    except SQLAlchemyError as error:
        abandon()
        log.warning("a write after the request was left undone: %s", type(error).__name__)


def _teardown(exc):
    if exc is not None:
        rollback()


def init_app(app) -> None:
    app.after_request(finish)
    app.teardown_request(_teardown)
    with app.app_context():
        event.listen(db.engine, "handle_error", _lost_with_stale_plans)
        if db.engine.dialect.name == "postgresql":
            live_connections.watch(db.engine)
