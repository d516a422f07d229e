"""Connections that the database closed while they were idle (a restart, an administrator ending
backends, a server that ends idle connections), kept beside the pool or in it. The database tells
the client when it ends a backend: the connection's socket turns readable. A connection found so
is dropped before a statement is sent on it (idp.live_connections): a write on a kept connection,
which is never tried twice, is made on a live one instead of answering 503, a read needs no second
try, and the pool's checkout needs no ping for a connection that waited a moment."""

from __future__ import annotations

from sqlalchemy import update

from idp import live_connections, readers, unit_of_work
from idp.extensions import db
from idp.models import Token
from tests.helpers import end_backends, engine_on, exchange_code, introspect, traced_round_trips


def _kept(engine, count: int) -> list:
    """``count`` connections kept beside the pool, idle (each made by a read of its own)."""
    statements = [unit_of_work.KeptStatements(engine) for _ in range(count)]
    pids = []
    for kept in statements:
        kept.execute(db.select(Token.id).where(Token.id == -1), {})
        pids.append(kept._connection.info.backend_pid)  # noqa: SLF001 - the connection under test
    for kept in statements:
        kept.close()
    return pids


def test_a_write_after_the_database_closed_the_kept_connections_is_made_on_a_live_one(app):
    engine = engine_on(app, "postgresql", "a server that ends its backends")
    with app.app_context():
        pids = _kept(engine, 2)
        end_backends(engine, pids)
        written = unit_of_work.committed_alone(
            update(Token).where(Token.id == -1).values(scope="openid"), {})
        assert written is not None and written.rowcount == 0
        live = readers.of(engine).take()
        assert live is not None and live.info.backend_pid not in pids
        readers.of(engine).give_back(live)


def test_a_code_exchange_after_the_database_closed_the_kept_connections(app, signed_in, portal):
    engine = engine_on(app, "postgresql", "a server that ends its backends")
    with app.app_context():
        end_backends(engine, _kept(engine, 3))
    signed_in.authorize(portal["client_id"], scope="openid email")
    answer = exchange_code(app.test_client(), portal, signed_in.callback_params()["code"], signed_in.verifier)
    assert answer.status_code == 200, answer.get_json()
    assert introspect(app.test_client(), portal, answer.get_json()["access_token"])["active"] is True


def _pooled(engine, count: int) -> list:
    """The backends of ``count`` connections of the pool, given back to it."""
    connections = [engine.raw_connection() for _ in range(count)]
    pids = [c.dbapi_connection.info.backend_pid for c in connections]
    for connection in connections:
        connection.close()
    return pids


def test_the_pool_replaces_connections_the_database_closed_before_a_request_uses_them(app, signed_in, portal):
    engine = engine_on(app, "postgresql", "a server that ends its backends")
    end_backends(engine, _pooled(engine, 3))
    signed_in.authorize(portal["client_id"], scope="openid email")  # the request's session, pooled
    answer = exchange_code(app.test_client(), portal, signed_in.callback_params()["code"], signed_in.verifier)
    assert answer.status_code == 200, answer.get_json()


def test_a_checkout_sends_nothing_unless_the_connection_waited_long(app, tmp_path, monkeypatch):
    """The pool's checkout costs no round trip for a connection given back a moment ago; one that
    waited longer than live_connections.PING_AFTER is pinged (one round trip), for a connection
    something between dropped without a word."""
    engine = engine_on(app, "postgresql", "PostgreSQL's round trips")
    engine.dispose()  # then the pool holds the one connection below
    pooled = engine.raw_connection()
    connection = pooled.dbapi_connection
    pooled.close()

    def checkout():
        again = engine.raw_connection()
        assert again.dbapi_connection is connection  # the one connection the pool holds idle
        again.close()

    _, moment, sent = traced_round_trips(connection, tmp_path / "moment", checkout)
    assert moment == 0, sent
    monkeypatch.setattr(live_connections, "PING_AFTER", -1.0)
    _, waited, sent = traced_round_trips(connection, tmp_path / "waited", checkout)
    assert waited == 1, sent


def test_a_connection_made_for_a_checkout_is_not_checked_again(app, monkeypatch):
    """A connection found closed is replaced, and its replacement is used without a second check:
    the pool gives up after a second replacement with an error that is not the database's."""
    engine = engine_on(app, "postgresql", "the pool's checkout on PostgreSQL")
    engine.dispose()
    old = _pooled(engine, 1)
    monkeypatch.setattr(live_connections, "closed_by_server", lambda connection: True)
    pooled = engine.raw_connection()
    try:
        assert pooled.dbapi_connection.info.backend_pid not in old
    finally:
        pooled.close()
