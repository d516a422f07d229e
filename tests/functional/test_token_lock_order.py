"""Statements that end several tokens at once (an end of a sign-in session, a family's, an app's
or a person's revocation, a connector user's) lock the token rows in the order of their ids, so
two of them that share tokens wait for each other in turn. In any other order each could hold a
row the other waits for, and PostgreSQL would end one of them after a second (a logout or a
revocation answered 503). Where one ends sign-in sessions, grants and tokens, it takes them in
that order: the sessions, then the grants, then the tokens, each kind in the order of its ids."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import Account, Grant, SsoSession, Token
from idp.services import accounts, prune, sessions, support
from idp.services.crypto import token_hash
from tests.helpers import (FULL, GOOD_PASSWORD, basic, engine_on, interleaved, introspect, refresh, token_request,
                           tokens_for)

REVOKE_TOKEN = "UPDATE tokens SET revoked_at = now() AT TIME ZONE 'UTC' WHERE id = %s"
REVOKE_GRANT = "UPDATE grants SET revoked_at = now() AT TIME ZONE 'UTC' WHERE id = %s"
END_SESSION = "UPDATE sessions SET ended_at = now() AT TIME ZONE 'UTC' WHERE id = %s"


def test_on_postgresql_a_logout_and_a_family_s_revocation_wait_for_each_other(app, signed_in, portal):
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    first = tokens_for(signed_in, portal, scope=FULL)  # offline: outlives its sign-in session
    narrowed = token_request(signed_in.http, portal, {"grant_type": "refresh_token",
                                                      "refresh_token": first["refresh_token"], "scope": "openid email"})
    assert narrowed.status_code == 200, narrowed.get_json()

    with app.app_context():
        (older, session_id), (newer, _) = db.session.execute(
            select(Token.id, Token.session_id).where(Token.access_token_hash.in_(
                [token_hash(first["access_token"]), token_hash(narrowed.get_json()["access_token"])])).order_by(Token.id)
        ).all()

    def logout():
        with app.test_request_context():
            sessions.end(db.session.get(SsoSession, session_id), ip=None)
            db.session.commit()

    # A family's revocation, its rows in the order of their ids: the older token first.
    interleaved(engine, lambda cursor: cursor.execute(REVOKE_TOKEN, (older,)), logout,
                lambda cursor, _: cursor.execute(REVOKE_TOKEN, (newer,)), "the logout")  # and it raised nothing
    with app.app_context():
        assert db.session.get(SsoSession, session_id).ended_at is not None
    for body in (first, narrowed.get_json()):
        assert introspect(app.test_client(), portal, body["access_token"])["active"] is False


def _password_change(account):
    accounts.set_password(account, GOOD_PASSWORD, GOOD_PASSWORD, ip=None)


def _disabling(account):
    support.disable(account, actor="staff:support@example.com", ip=None, reason="Lost laptop")


@pytest.mark.parametrize("change", [_password_change, _disabling], ids=["password", "disable"])
def test_on_postgresql_an_account_s_change_and_a_family_s_revocation_wait_for_each_other(app, signed_in, portal,
                                                                                       person, change):
    """A password change or a disabling ends the account's sign-in sessions, then revokes its
    grants, then its tokens; a family's revocation takes its grant, then its tokens. Had the
    change ended the sessions' tokens with the sessions, it would hold a token of the family
    while it waited for the grant (one of the two answered 503)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    body = tokens_for(signed_in, portal, scope=FULL)
    with app.app_context():
        token = db.session.scalar(select(Token).where(Token.access_token_hash == token_hash(body["access_token"])))
        grant_id, session_id = token.grant_id, token.session_id
    assert session_id

    def change_account():
        with app.test_request_context():
            change(db.session.get(Account, person["sub"]))
            db.session.commit()

    interleaved(engine, lambda cursor: cursor.execute(REVOKE_GRANT, (grant_id,)),  # tokens.revoke_family: the grant first
                change_account,
                lambda cursor, _: cursor.execute("UPDATE tokens SET revoked_at = now() AT TIME ZONE 'UTC'"
                                                 " WHERE grant_id = %s AND revoked_at IS NULL", (grant_id,)),
                "the account's change")  # and it raised nothing
    with app.app_context():
        assert db.session.get(SsoSession, session_id).ended_at is not None
    assert introspect(app.test_client(), portal, body["access_token"])["active"] is False
    assert refresh(app.test_client(), portal, body["refresh_token"]).status_code == 400


def _rows_committed(cursor, statement: str, rows) -> None:
    """Rows inserted and committed by the test's own transaction, in the table in this order."""
    for values in rows:
        cursor.execute(statement, values)
    cursor.connection.commit()


def test_on_postgresql_revocations_of_several_grants_wait_for_each_other(app, signed_in, portal, person):
    """A statement that revokes several grants (a person's, an app's, earlier connections)
    locks them in the order of their ids, whatever order its plan reads them in. Here the
    grant with the higher id lies first in the table, where a disabling's UPDATE came to it
    first, and then waited for the other, held by an app's revocation that would take this one
    next (one of the two answered 503)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    lower, higher = "0" * 32, "f" * 32

    def revoke_lower(cursor):  # an app's revocation of both families (tokens.revoke_for_client)
        _rows_committed(cursor, "INSERT INTO grants (id, client_id, account_id, created_at)"
                                " VALUES (%s, %s, %s, now() AT TIME ZONE 'UTC')",
                        [(grant_id, portal["client_id"], person["sub"]) for grant_id in (higher, lower)])
        cursor.execute(REVOKE_GRANT, (lower,))

    def disable():
        with app.test_request_context():
            _disabling(db.session.get(Account, person["sub"]))
            db.session.commit()

    interleaved(engine, revoke_lower, disable, lambda cursor, _: cursor.execute(REVOKE_GRANT, (higher,)),
                "the disabling")  # and it raised nothing
    with app.app_context():
        assert db.session.get(Account, person["sub"]).disabled_at is not None
        assert all(db.session.get(Grant, grant_id).revoked_at is not None for grant_id in (lower, higher))


def test_on_postgresql_a_revocation_lets_a_rotation_of_its_family_save_the_successor(app, signed_in, portal):
    """A revocation locks its grant as an UPDATE of it does (FOR NO KEY UPDATE), which lets a
    token of the family be saved meanwhile (the INSERT's check of its grant locks it FOR KEY
    SHARE): a rotation that claimed the token the revocation waits for saves its successor and
    commits, and the revocation goes on. Locked FOR UPDATE, the grant would keep the successor
    waiting while the rotation kept the revocation waiting (one of the two answered 503)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    body = tokens_for(signed_in, portal, scope=FULL)
    with app.app_context():
        token = db.session.scalar(select(Token).where(Token.refresh_token_hash == token_hash(body["refresh_token"])))
        token_id, grant_id = token.id, token.grant_id

    def save_successor(cursor, _):
        cursor.execute("INSERT INTO tokens (client_id, account_id, grant_id, access_token_hash, scope, issued_at,"
                       " expires_in) SELECT client_id, account_id, grant_id, 'successor', scope,"
                       " now() AT TIME ZONE 'UTC', expires_in FROM tokens WHERE id = %s", (token_id,))

    answer = interleaved(
        engine,
        # A rotation (tokens.Rotation): the claim, then its successor's INSERT.
        lambda cursor: cursor.execute("UPDATE tokens SET refresh_used_at = now() AT TIME ZONE 'UTC' WHERE id = %s",
                                      (token_id,)),
        lambda: app.test_client().post("/revoke", data={"token": body["refresh_token"]}, headers=basic(portal)),
        save_successor, "the revocation")
    assert answer.status_code == 200
    with app.app_context():
        assert db.session.get(Grant, grant_id).revoked_at is not None  # the successor's family
    assert introspect(app.test_client(), portal, body["access_token"])["active"] is False


def _prune_as_of(app, when):
    def prune_now():
        with app.app_context():
            return prune.prune(now=when)

    return prune_now


def test_on_postgresql_a_prune_and_a_person_s_revocation_wait_for_each_other(app, portal, person):
    """A prune deletes dead families' tokens locked in the order of their ids, as a revocation
    of several tokens takes them. Here the token with the higher id is of the family that comes
    first (by its grant, and in the table), where the prune's DELETE came to it first, and then
    waited for the other, held by a person's revocation that would take this one next (one of
    the two failed)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    lower, higher = 1000, 1001  # token ids: the lower of family "b", the higher of family "a"
    long_ago = dt.datetime(2026, 1, 5, 9, 0)

    def revoke_lower(cursor):  # a person's revocation (tokens.revoke_for_account), in the order of the ids
        for token_id, grant_id in ((higher, "a" * 32), (lower, "b" * 32)):  # in the table in this order
            cursor.execute("INSERT INTO grants (id, client_id, account_id, created_at) VALUES (%s, %s, %s, %s)",
                           (grant_id, portal["client_id"], person["sub"], long_ago))
            cursor.execute("INSERT INTO tokens (id, client_id, account_id, grant_id, access_token_hash, scope,"
                           " issued_at, expires_in) VALUES (%s, %s, %s, %s, %s, 'openid', %s, 300)",
                           (token_id, portal["client_id"], person["sub"], grant_id, f"hash-{token_id}", long_ago))
        cursor.connection.commit()
        cursor.execute(REVOKE_TOKEN, (lower,))

    pruned = interleaved(engine, revoke_lower, _prune_as_of(app, long_ago + dt.timedelta(days=1)),
                         lambda cursor, _: cursor.execute(REVOKE_TOKEN, (higher,)), "the prune")
    assert pruned["tokens"] == 2
    with app.app_context():
        assert db.session.get(Token, lower) is None and db.session.get(Token, higher) is None


def _three_sessions(app, person, client_id) -> tuple[str, str, str]:
    """The person's current session and two others, each of the others with a token; the
    others in the order of their ids, the second seen last, its token's id the higher."""
    with app.test_request_context():
        account = db.session.get(Account, person["sub"])
        current, *others = (sessions.start(account, ["pwd"], ip=None, user_agent=None) for _ in range(3))
        first, second = sorted(others, key=lambda s: s.id)
        first.last_seen_at, second.last_seen_at = clock.now(), clock.now() + dt.timedelta(minutes=5)
        for token_id, session in ((1000, first), (1001, second)):
            db.session.add(Grant(id=f"{token_id:032d}", client_id=client_id, account_id=account.id))
            db.session.flush()
            db.session.add(Token(id=token_id, client_id=client_id, account_id=account.id, grant_id=f"{token_id:032d}",
                                 session_id=session.id, access_token_hash=f"hash-{token_id}", scope="openid",
                                 expires_in=300))
        db.session.commit()
        return current.id, first.id, second.id


@pytest.mark.parametrize("held", ["sessions", "tokens"])
def test_on_postgresql_an_end_of_the_other_sessions_takes_them_in_the_order_of_their_ids(app, portal, person, held):
    """The person's "end my other sessions" ends them as a password change does: the session
    rows in the order of their ids, then all their tokens in one statement, in the order of
    theirs. One session at a time, the most recently seen first, it held one session and its
    tokens while it waited for another session, or a token of another, that a password change's
    end of the sessions or an app's revocation held while it waited for one of the first (one of
    the two answered 503)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    current, first, second = _three_sessions(app, person, portal["client_id"])
    if held == "sessions":  # a password change's end of the sessions (sessions.end_all_for)
        statement, rows = END_SESSION, (first, second)
    else:  # an app's revocation (tokens.revoke_for_client), its grants taken already
        statement, rows = REVOKE_TOKEN, (1000, 1001)

    def end_others():
        with app.test_request_context():
            ended = sessions.end_others(db.session.get(Account, person["sub"]),
                                        current=db.session.get(SsoSession, current), ip=None)
            db.session.commit()
            return ended

    ended = interleaved(engine, lambda cursor: cursor.execute(statement, (rows[0],)), end_others,
                        lambda cursor, _: cursor.execute(statement, (rows[1],)), "the end of the other sessions")
    assert ended == 2
    with app.app_context():
        assert db.session.get(SsoSession, current).ended_at is None
        assert all(db.session.get(SsoSession, sid).ended_at is not None for sid in (first, second))
        assert all(db.session.get(Token, token_id).revoked_at is not None for token_id in (1000, 1001))


@pytest.mark.parametrize("kind", ["sessions", "grants"])
def test_on_postgresql_a_prune_takes_sessions_and_grants_in_the_order_of_their_ids(app, portal, person, kind):
    """A prune deletes a batch of expired sessions, or of grants no token or code is left of,
    locked in the order of their ids, as an UPDATE of several of them in that order (an end of
    sessions, a revocation of grants) takes them. Here the row with the higher id lies first in
    the table, where the prune's DELETE came to it first, and then waited for the other, held by
    that UPDATE, which would take this one next (one of the two failed)."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    long_ago = dt.datetime(2026, 1, 5, 9, 0)
    lower, higher = "0" * 32, "f" * 32
    if kind == "sessions":
        insert = ("INSERT INTO sessions (id, account_id, auth_time, amr, created_at, expires_at)"
                  " VALUES (%s, %s, %s, '[]', %s, %s)")
        values = lambda row_id: (row_id, person["sub"], long_ago, long_ago, long_ago + dt.timedelta(hours=8))  # noqa: E731
        statement = END_SESSION
    else:  # tokens.revoke_for_account
        insert = "INSERT INTO grants (id, client_id, account_id, created_at) VALUES (%s, %s, %s, %s)"
        values = lambda row_id: (row_id, portal["client_id"], person["sub"], long_ago)  # noqa: E731
        statement = REVOKE_GRANT

    def update_lower(cursor):
        _rows_committed(cursor, insert, [values(row_id) for row_id in (higher, lower)])
        cursor.execute(statement, (lower,))

    pruned = interleaved(engine, update_lower, _prune_as_of(app, long_ago + dt.timedelta(days=1)),
                         lambda cursor, _: cursor.execute(statement, (higher,)), "the prune")
    assert pruned[kind] == 2
    with app.app_context():
        model = SsoSession if kind == "sessions" else Grant
        assert db.session.get(model, lower) is None and db.session.get(model, higher) is None


def test_on_postgresql_a_browser_s_last_seen_is_written_after_its_request(app, signed_in, person):
    """A browser's "last seen" is written after its request, in a transaction of its own: in the
    request it would lock the browser's own session row first, before the others that "end my
    other sessions" takes in the order of their ids, while a password change from another
    browser (or a disabling) takes all of them in that order (one of the two answered 503)."""
    from .test_security_centre import another_browser, security

    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    phone = another_browser(app, signed_in, person)
    with app.app_context():
        laptop_sid, phone_sid = db.session.scalars(select(SsoSession.id).order_by(SsoSession.created_at)).all()
    lower, higher = sorted((laptop_sid, phone_sid))
    browser = phone if phone_sid == higher else signed_in  # its own session is the one taken last
    security(browser)
    form = next(f for f in browser.page.forms.values() if f["action"].endswith("/sessions/others"))
    clock.advance(minutes=6)  # its "last seen" is due

    def end_others():
        return browser.post(form["action"], form["fields"], follow=False).status_code

    lock = "SELECT 1 FROM sessions WHERE id = %s FOR UPDATE"
    status = interleaved(engine, lambda cursor: cursor.execute(lock, (lower,)), end_others,
                         lambda cursor, _: cursor.execute(lock, (higher,)), "the end of the other sessions")
    assert status == 302
    with app.app_context():
        assert db.session.get(SsoSession, lower).ended_at is not None
        own = db.session.get(SsoSession, higher)
        assert own.ended_at is None and own.last_seen_at == clock.now()
