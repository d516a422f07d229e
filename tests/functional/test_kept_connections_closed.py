"""Connections kept beside the pool that the database closed while they were idle (a restart, an
administrator ending backends, a server that ends idle connections). The database tells the
client when it ends a backend: the connection's socket turns readable. A kept connection found so
is dropped before a statement is sent on it, so a write, which is never tried twice, is made on a
live connection instead of answering 503; and a read needs no second try."""

from __future__ import annotations

import time

from sqlalchemy import update

from idp import readers, unit_of_work
from idp.extensions import db
from idp.models import Token
from tests.helpers import engine_on, exchange_code, introspect


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


def _end_backends(engine, pids: list) -> None:
    """End those backends as a restart or an administrator does, and wait until they are gone."""
    other = engine.raw_connection()
    try:
        cursor = other.cursor()
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.02)
        other.commit()
    finally:
        other.close()


def test_a_write_after_the_database_closed_the_kept_connections_is_made_on_a_live_one(app):
    engine = engine_on(app, "postgresql", "a server that ends its backends")
    with app.app_context():
        pids = _kept(engine, 2)
        _end_backends(engine, pids)
        written = unit_of_work.committed_alone(
            update(Token).where(Token.id == -1).values(scope="openid"), {})
        assert written is not None and written.rowcount == 0
        live = readers.of(engine).take()
        assert live is not None and live.info.backend_pid not in pids
        readers.of(engine).give_back(live)


def test_a_code_exchange_after_the_database_closed_the_kept_connections(app, signed_in, portal):
    engine = engine_on(app, "postgresql", "a server that ends its backends")
    with app.app_context():
        _end_backends(engine, _kept(engine, 3))
    signed_in.authorize(portal["client_id"], scope="openid email")
    answer = exchange_code(app.test_client(), portal, signed_in.callback_params()["code"], signed_in.verifier)
    assert answer.status_code == 200, answer.get_json()
    assert introspect(app.test_client(), portal, answer.get_json()["access_token"])["active"] is True
