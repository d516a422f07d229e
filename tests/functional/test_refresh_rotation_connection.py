"""A refresh token is rotated on a connection of its own (services.tokens.Rotation), which goes
back to the pool however the request ends, with nothing of a refused rotation written; when the
request's session has begun a transaction, the rotation joins it instead. On PostgreSQL an
offline family's rotation is two round trips: the read, then the claim and the successor's
INSERT in one statement, which leaves the presented token's row as it was but for its use."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, event, select

from idp import clock
from idp.extensions import db
from idp.models import Client, Token
from idp.services import tokens as token_service
from idp.services.crypto import token_hash
from idp.unit_of_work import KeptStatements, PooledTransaction
from tests.helpers import (FULL, end_backends, engine_on, interleaved, introspect, kept_connection, make_client, refresh,
                           set_disabled, token_request, tokens_for, traced_round_trips)


def _checked_out(app) -> int:
    with app.app_context():
        return db.engine.pool.checkedout()


def _refresh_token_row(app, value) -> Token:
    with app.app_context():
        return db.session.scalar(select(Token).where(Token.refresh_token_hash == token_hash(value)))


def test_every_refused_refresh_returns_its_connection_and_leaves_the_token_usable(app, signed_in, portal, person):
    body = tokens_for(signed_in, portal, scope=FULL)
    other = make_client(app, name="Other portal")
    http = signed_in.http
    assert _checked_out(app) == 0
    refusals = [
        lambda: token_request(http, portal, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                             "scope": "openid admin"}),  # a scope never granted
        lambda: refresh(http, other, body["refresh_token"]),  # another client's token
        lambda: refresh(http, portal, "not-a-token"),
    ]
    for refuse in refusals:
        assert refuse().status_code == 400
        assert _checked_out(app) == 0
        assert _refresh_token_row(app, body["refresh_token"]).refresh_used_at is None
    set_disabled(app, person["email"], clock.now())
    assert refresh(http, portal, body["refresh_token"]).status_code == 400
    assert _checked_out(app) == 0
    set_disabled(app, person["email"], None)
    answer = refresh(http, portal, body["refresh_token"])
    assert answer.status_code == 200, answer.get_json()
    assert _checked_out(app) == 0
    # A rotated-away token came back: refused, its family revoked, no connection left out.
    assert refresh(http, portal, body["refresh_token"]).status_code == 400
    assert _checked_out(app) == 0
    assert refresh(http, portal, answer.get_json()["refresh_token"]).status_code == 400


def test_an_expired_refresh_token_is_refused_without_a_claim(app, signed_in, portal):
    body = tokens_for(signed_in, portal, scope=FULL)
    clock.advance(seconds=app.config["REFRESH_TOKEN_LIFETIME"] + 1)
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 400
    assert _checked_out(app) == 0
    assert _refresh_token_row(app, body["refresh_token"]).refresh_used_at is None


def test_a_rotation_joins_a_session_that_has_begun_a_transaction(app, signed_in, portal):
    body = tokens_for(signed_in, portal, scope=FULL)
    with app.test_request_context():
        db.session.get(Client, portal["client_id"])  # the session has begun (a read)
        rotation = token_service.Rotation()
        assert rotation.connection is db.session.connection()
        found = rotation.find(body["refresh_token"])
        assert rotation.claim(found, clock.now())
        rotation.commit()
        assert not db.session().in_transaction()
    assert _refresh_token_row(app, body["refresh_token"]).refresh_used_at == clock.now()
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 400  # spent


@pytest.mark.parametrize("on_session", [False, True])
def test_a_rotation_closed_before_its_commit_writes_nothing(app, signed_in, portal, on_session):
    body = tokens_for(signed_in, portal, scope=FULL)
    with app.test_request_context():
        if on_session:
            db.session.get(Client, portal["client_id"])
        rotation = token_service.Rotation()
        found = rotation.find(body["refresh_token"])
        assert rotation.claim(found, clock.now() + dt.timedelta(seconds=1))
        rotation.close()
        rotation.close()  # twice: nothing left to return
    assert _refresh_token_row(app, body["refresh_token"]).refresh_used_at is None
    assert _checked_out(app) == 0
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 200


def _rotations(app, signed_in, portal, person, monkeypatch, listened: bool) -> tuple[list, list]:
    """A family's refreshes (a rotation, a successor's, a replay that revokes the family, a refused
    one), its rows after them, and how many statements ran on a ``PooledTransaction`` or on
    ``KeptStatements``."""
    pooled = []
    for kind in (PooledTransaction, KeptStatements):
        monkeypatch.setattr(kind, "execute", lambda self, *a, execute=kind.execute: pooled.append(a[0])
                            or execute(self, *a))
    with app.app_context():
        engine = db.engine
    watched = []
    listener = lambda *a: watched.append(a[2])  # noqa: E731 - the statement
    if listened:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        body = tokens_for(signed_in, portal, scope=FULL)
        http = signed_in.http
        first = refresh(http, portal, body["refresh_token"])
        second = refresh(http, portal, first.get_json()["refresh_token"])
        replay = refresh(http, portal, body["refresh_token"])
        after = refresh(http, portal, second.get_json()["refresh_token"])
    finally:
        if listened:
            event.remove(engine, "before_cursor_execute", listener)
    answers = [(r.status_code, sorted(r.get_json())) for r in (first, second, replay, after)]
    with app.app_context():
        rows = [(row.client_id, row.account_id, row.scope, row.expires_in, row.refresh_used_at, row.revoked_at,
                 row.access_revoked_at, row.refresh_expires_at, row.auth_time, row.session_id is not None,
                 row.refresh_token_hash is not None, row.issued_at, row.connector_id, row.dpop_jkt)
                for row in db.session.scalars(select(Token).order_by(Token.id))]
    assert (len(pooled) > 0) is not listened
    if listened:
        assert any("UPDATE tokens SET refresh_used_at" in sql for sql in watched)
    return answers, rows


def test_a_rotation_on_the_pooled_connection_is_the_rotation_on_sqlalchemy_s(app, signed_in, portal, person,
                                                                            monkeypatch):
    clock.freeze(clock.now())
    pooled = _rotations(app, signed_in, portal, person, monkeypatch, listened=False)
    with app.app_context():
        db.session.execute(delete(Token))
        db.session.commit()
    listened = _rotations(app, signed_in, portal, person, monkeypatch, listened=True)
    assert pooled == listened
    assert [status for status, _ in pooled[0]] == [200, 200, 400, 400]


def test_a_rotation_after_the_database_closed_the_pooled_connections_succeeds(app, signed_in, portal):
    """As in a database restart: the pool's check-out finds the connection closed and replaces it."""
    engine = engine_on(app, "postgresql", "PostgreSQL's server processes")
    body = tokens_for(signed_in, portal, scope=FULL)
    assert end_backends(engine) >= 1
    answer = refresh(signed_in.http, portal, body["refresh_token"])
    assert answer.status_code == 200, answer.get_json()
    assert refresh(signed_in.http, portal, answer.get_json()["refresh_token"]).status_code == 200
    assert _checked_out(app) == 0


def _columns(row: Token) -> dict:
    return {column.key: getattr(row, column.key) for column in Token.__table__.columns}


@pytest.mark.parametrize("scope", [FULL, "openid email"])
def test_a_rotation_changes_nothing_of_the_presented_token_but_its_use(app, signed_in, portal, scope):
    """The successor is a row of its own; the presented token's row keeps every value, and only
    its use is set. With ``FULL`` (offline): on PostgreSQL the claim and the INSERT in one
    statement; narrowed to an online scope: the claim, the session minded and the INSERT."""
    clock.freeze(clock.now())
    body = tokens_for(signed_in, portal, scope=FULL)
    before = _columns(_refresh_token_row(app, body["refresh_token"]))
    clock.advance(seconds=5)
    answer = token_request(signed_in.http, portal, {"grant_type": "refresh_token",
                                                    "refresh_token": body["refresh_token"], "scope": scope})
    assert answer.status_code == 200, answer.get_json()
    after = _columns(_refresh_token_row(app, body["refresh_token"]))
    assert after == {**before, "refresh_used_at": clock.now()}
    successor = _columns(_refresh_token_row(app, answer.get_json()["refresh_token"]))
    assert successor["id"] != before["id"] and successor["grant_id"] == before["grant_id"]
    assert successor["scope"] == scope and successor["issued_at"] == clock.now()
    assert successor["refresh_used_at"] is None and successor["revoked_at"] is None
    assert _checked_out(app) == 0


def test_on_postgresql_an_offline_rotation_is_two_round_trips(app, signed_in, portal, tmp_path):
    """The read and the one statement that claims and saves, each in autocommit on the connection
    kept beside the pool: no ping, no BEGIN, no COMMIT (libpq's protocol trace)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's round trips")
    body = tokens_for(signed_in, portal, scope=FULL)
    first = refresh(signed_in.http, portal, body["refresh_token"])  # a kept connection made
    assert first.status_code == 200
    connection = kept_connection(engine)
    second, round_trips, sent = traced_round_trips(
        connection, tmp_path / "trace", lambda: refresh(signed_in.http, portal, first.get_json()["refresh_token"]))
    assert second.status_code == 200, second.get_json()
    assert round_trips == 2, sent
    assert connection.info.transaction_status == 0  # IDLE: nothing left open
    assert _refresh_token_row(app, first.get_json()["refresh_token"]).refresh_used_at is not None
    assert _refresh_token_row(app, second.get_json()["refresh_token"]).refresh_used_at is None


def test_on_postgresql_a_narrowed_rotation_and_an_end_of_its_session_wait_for_each_other(app, signed_in, portal):
    """An end of a sign-in session (a logout) writes the session's row, then its tokens' rows. A
    rotation narrowed to an online scope, whose new token minds that session, takes the same rows
    in the same order: the two wait for each other in turn. In the other order each would hold
    the row the other waits for, and PostgreSQL would end one of them after a second (a logout or
    a refresh answered 503). Here the end commits first, so the new token is born ended."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    body = tokens_for(signed_in, portal, scope=FULL)
    session_id = _refresh_token_row(app, body["refresh_token"]).session_id
    assert session_id
    answer = interleaved(
        engine,
        lambda cursor: cursor.execute("UPDATE sessions SET ended_at = now() AT TIME ZONE 'UTC' WHERE id = %s",
                                      (session_id,)),
        lambda: token_request(app.test_client(), portal, {
            "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "scope": "openid email"}),
        # The end's second statement: the session's tokens (sessions.end, tokens.end_session_tokens).
        lambda cursor, _: cursor.execute("UPDATE tokens SET access_revoked_at = now() AT TIME ZONE 'UTC'"
                                         " WHERE session_id = %s AND revoked_at IS NULL", (session_id,)),
        "the rotation")
    assert answer.status_code == 200, answer.get_json()
    rotated = answer.get_json()
    assert introspect(app.test_client(), portal, rotated["access_token"])["active"] is False
    if "refresh_token" in rotated:  # it ended with its session too
        assert refresh(app.test_client(), portal, rotated["refresh_token"]).status_code == 400
