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

from .extensions import db

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


@contextmanager
def _reader():
    """What a read-only statement runs on: the request's session when it has begun a transaction
    or holds changes (the read sees what the request wrote); else a connection of its own,
    returned at once, so that a request that only reads (introspection) makes no session and
    has no transaction to commit."""
    if _session_holds_work():
        yield db.session
    else:
        with db.engine.connect() as connection:
            yield connection


def read_first(statement, parameters: dict):
    """The first row (a mapping) of a read-only statement, or None (see ``_reader``)."""
    with _reader() as reader:
        return reader.execute(statement, parameters).mappings().first()


def read_scalar(statement, parameters: dict | None = None):
    """The first column of the first row of a read-only statement, or None (see ``_reader``)."""
    with _reader() as reader:
        return reader.scalar(statement, parameters)


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
