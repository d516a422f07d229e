"""A refresh reads its token, the token's family and its person in one SELECT, as read-only
rows, and rotates in two statements: the rules those rows carry still hold."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import event, select

from idp import clock
from idp.extensions import db
from idp.models import Token
from idp.models.oauth import PresentedRefreshToken
from idp.services import tokens as token_service
from tests.helpers import FULL, decode, refresh, set_disabled, tokens_for


def test_a_disabled_persons_refresh_token_is_refused_and_not_spent(app, signed_in, portal, person):
    body = tokens_for(signed_in, portal, scope=FULL)
    # Disabled without its tokens revoked (as a support action would also revoke them): the
    # refresh itself refuses the person.
    set_disabled(app, person["email"], clock.now())
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 400
    set_disabled(app, person["email"], None)
    again = refresh(signed_in.http, portal, body["refresh_token"])
    assert again.status_code == 200, again.get_json()
    assert decode(signed_in.http, again.get_json()["id_token"]).claims["sub"] == person["sub"]


def test_the_presented_token_is_a_read_only_row_with_its_family_and_person(app, signed_in, portal, person):
    body = tokens_for(signed_in, portal, scope=FULL)
    with app.test_request_context():
        rotation = token_service.Rotation()
        found = rotation.find(body["refresh_token"])
        assert isinstance(found, PresentedRefreshToken)
        stored = db.session.scalar(select(Token).where(Token.id == found.id))
        assert (found.grant_id, found.session_id, found.auth_time, found.scope) == (
            stored.grant_id, stored.session_id, stored.auth_time, stored.scope)
        assert found.grant.id == stored.grant_id and found.grant.amr == stored.grant.amr
        assert found.account.email == person["email"] and found.account.get_user_id() == stored.account_id
        assert found.is_refresh_usable()
        with pytest.raises(AttributeError):
            found.refresh_used_at = clock.now()
        with pytest.raises(AttributeError):
            found.account.disabled_at = clock.now()
        assert rotation.find(body["access_token"]) is None
        assert rotation.find("x" * 513) is None
        rotation.close()


class _Statements:
    """The statements the app's engine runs while open, with the tables each names."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.seen: list[tuple[str, set[str]]] = []
        self._lock = threading.Lock()

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        tables = set(re.findall(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+"?(\w+)', statement))
        with self._lock:
            self.seen.append((statement.split(None, 1)[0].upper(), tables))

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._before)


def test_a_refresh_reads_its_token_family_and_person_at_once_and_rotates_in_two_writes(app, signed_in, portal):
    body = tokens_for(signed_in, portal, scope="openid offline_access")
    with _Statements(app) as statements:
        answer = refresh(signed_in.http, portal, body["refresh_token"])
    assert answer.status_code == 200, answer.get_json()
    about_the_token = [(verb, tables) for verb, tables in statements.seen if tables & {"tokens", "grants", "accounts"}]
    assert about_the_token == [
        ("SELECT", {"tokens", "grants", "accounts"}),  # the token, its family, its person
        ("UPDATE", {"tokens"}),  # the claim
        ("INSERT", {"tokens"}),  # its successor
    ], about_the_token
