"""Statements that end several tokens at once (an end of a sign-in session, a family's, an app's
or a person's revocation, a connector user's) lock the token rows in the order of their ids, so
two of them that share tokens wait for each other in turn. In any other order each could hold a
row the other waits for, and PostgreSQL would end one of them after a second (a logout or a
revocation answered 503)."""

from __future__ import annotations

from idp.extensions import db
from idp.models import SsoSession
from idp.services import sessions
from idp.services.crypto import token_hash
from tests.helpers import FULL, Beside, engine_on, introspect, token_request, tokens_for, waiting_for_a_lock


def test_on_postgresql_a_logout_and_a_family_s_revocation_wait_for_each_other(app, signed_in, portal):
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    first = tokens_for(signed_in, portal, scope=FULL)  # offline: outlives its sign-in session
    narrowed = token_request(signed_in.http, portal, {"grant_type": "refresh_token",
                                                      "refresh_token": first["refresh_token"], "scope": "openid email"})
    assert narrowed.status_code == 200, narrowed.get_json()
    revoking = engine.raw_connection()
    ending = None
    try:
        cursor = revoking.cursor()
        cursor.execute("SELECT id, session_id FROM tokens WHERE access_token_hash IN (%s, %s) ORDER BY id",
                       (token_hash(first["access_token"]), token_hash(narrowed.get_json()["access_token"])))
        (older, session_id), (newer, _) = cursor.fetchall()
        # A family's revocation, its rows in the order of their ids: the older token first.
        cursor.execute("UPDATE tokens SET revoked_at = now() AT TIME ZONE 'UTC' WHERE id = %s", (older,))

        def logout():
            with app.test_request_context():
                sessions.end(db.session.get(SsoSession, session_id), ip=None)
                db.session.commit()

        ending = Beside(logout)
        assert waiting_for_a_lock(engine), f"the logout did not wait for the family's revocation: {ending!r}"
        cursor.execute("UPDATE tokens SET revoked_at = now() AT TIME ZONE 'UTC' WHERE id = %s", (newer,))
        cursor.close()
        revoking.commit()
    finally:
        revoking.close()
        if ending is not None:
            ending.join()
    ending.result()  # the logout finished, and raised nothing
    with app.app_context():
        assert db.session.get(SsoSession, session_id).ended_at is not None
    for body in (first, narrowed.get_json()):
        assert introspect(app.test_client(), portal, body["access_token"])["active"] is False
