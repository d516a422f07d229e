"""The code exchange on PostgreSQL: the code read, claimed, and its token saved minding its sign-in
session, each one statement in autocommit on the connection kept beside the pool (three round
trips, where the request's session took ten); an end of the session racing the exchange still
ends the token. On both databases the token saved is the one the session's statements saved."""

from __future__ import annotations

import pytest

from idp import clock
from idp.extensions import db
from idp.models import Token
from idp.services.crypto import token_hash
from tests.helpers import Beside, engine_on, exchange_code, introspect, kept_connection, traced_round_trips, waiting_for_a_lock

ONLINE = "openid email"


def _code(browser, portal, scope=ONLINE):
    browser.authorize(portal["client_id"], scope=scope)
    return browser.callback_params()["code"], browser.verifier


def _token_row(app, access_token) -> dict:
    with app.app_context():
        row = db.session.scalar(db.select(Token).where(Token.access_token_hash == token_hash(access_token)))
        return {column.key: getattr(row, column.key) for column in Token.__table__.columns}


def test_an_online_code_s_token_is_saved_with_its_session(app, signed_in, portal):
    clock.freeze(clock.now())
    code, verifier = _code(signed_in, portal)
    answer = exchange_code(app.test_client(), portal, code, verifier)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert introspect(app.test_client(), portal, body["access_token"])["active"] is True
    row = _token_row(app, body["access_token"])
    assert row["session_id"] and row["grant_id"] and row["account_id"]
    assert row["scope"] == ONLINE and row["issued_at"] == clock.now()
    assert row["revoked_at"] is None and row["access_revoked_at"] is None and row["refresh_token_hash"] is None
    again = exchange_code(app.test_client(), portal, code, verifier)  # the code was claimed
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_on_postgresql_an_online_code_exchange_is_three_round_trips(app, signed_in, portal, tmp_path):
    """The read, the claim and the save minding the session, each in autocommit on the kept
    connection: no ping, no BEGIN, no COMMIT (libpq's protocol trace)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's round trips")
    first = exchange_code(app.test_client(), portal, *_code(signed_in, portal))  # a kept connection made
    assert first.status_code == 200
    code, verifier = _code(signed_in, portal)
    connection = kept_connection(engine)
    answer, round_trips, sent = traced_round_trips(
        connection, tmp_path / "trace", lambda: exchange_code(app.test_client(), portal, code, verifier))
    assert answer.status_code == 200, answer.get_json()
    assert round_trips == 3, sent
    assert connection.info.transaction_status == 0  # IDLE: nothing left open
    assert introspect(app.test_client(), portal, answer.get_json()["access_token"])["active"] is True


@pytest.mark.parametrize("ends", [True, False])
def test_on_postgresql_an_exchange_waits_for_an_end_of_its_session_under_way(app, signed_in, portal, ends):
    """A logout has written the session's end but not committed it when the exchange saves its
    token: the exchange waits for the session row, then saves the token revoked if the end was
    committed, working if it was rolled back."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    code, verifier = _code(signed_in, portal)
    ending = engine.raw_connection()
    exchanging = None
    try:
        cursor = ending.cursor()
        cursor.execute("SELECT session_id FROM authorization_codes WHERE code_hash = %s", (token_hash(code),))
        session_id = cursor.fetchone()[0]
        cursor.execute("UPDATE sessions SET ended_at = now() AT TIME ZONE 'UTC' WHERE id = %s", (session_id,))
        cursor.close()
        exchanging = Beside(lambda: exchange_code(app.test_client(), portal, code, verifier))
        assert waiting_for_a_lock(engine), f"the exchange did not wait for the session row: {exchanging!r}"
        ending.commit() if ends else ending.rollback()
    finally:
        ending.close()
        if exchanging is not None:
            exchanging.join()
    answer = exchanging.result()
    assert answer.status_code == 200, answer.get_json()
    active = introspect(app.test_client(), portal, answer.get_json()["access_token"])["active"]
    assert active is (not ends)
    row = _token_row(app, answer.get_json()["access_token"])
    assert (row["revoked_at"] is not None) is ends and row["access_revoked_at"] is None
