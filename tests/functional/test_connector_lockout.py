"""Connector users' password grant under smart lockout: wrong passwords lock the client and
address they come from, for growing times that end by themselves (never until support), the
answers are the same for unknown usernames, and support's unlock still ends what does lock."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import AuditEvent
from tests.helpers import T0, last_mail, make_client, make_connector

BANK_IP, ELSEWHERE = "192.0.2.10", "198.51.100.7"


@pytest.fixture
def bank(app):
    clock.freeze(T0)
    return make_client(app, name="Bank", grant_types=("password",))


@pytest.fixture
def connector(app):
    return make_connector(app)


def grant(client, bank, username, password, ip=BANK_IP):
    raw = f"{bank['client_id']}:{bank['client_secret']}".encode()
    response = client.post("/token", data={"grant_type": "password", "username": username, "password": password},
                           headers={"Authorization": "Basic " + base64.b64encode(raw).decode()},
                           environ_base={"REMOTE_ADDR": ip})
    body = response.get_json()
    return response.status_code, body.get("error"), body.get("error_description")


def _lock(client, bank, username, ip=BANK_IP):
    for _ in range(5):
        assert grant(client, bank, username, "wrong", ip)[0] == 400


def test_wrong_passwords_lock_only_that_client_and_address(app, client, bank, connector):
    _lock(client, bank, connector["username"])
    assert grant(client, bank, connector["username"], connector["password"])[0] == 400  # locked, though right
    # The bank's integration elsewhere, and another client, are not affected.
    assert grant(client, bank, connector["username"], connector["password"], ELSEWHERE)[0] == 200
    other = make_client(app, name="Scanner", grant_types=("password",))
    assert grant(client, other, connector["username"], connector["password"])[0] == 200


def test_locks_grow_and_end_by_themselves_never_until_support(app, client, bank, connector):
    for minutes in (15, 30, 60, 120):  # the third lock used to last until support unlocked it
        _lock(client, bank, connector["username"])
        clock.advance(minutes=minutes - 1)
        assert grant(client, bank, connector["username"], connector["password"])[0] == 400
        clock.advance(minutes=1, seconds=1)
    assert grant(client, bank, connector["username"], connector["password"])[0] == 200
    with app.app_context():
        locks = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "connector.locked")))
    assert len(locks) == 4 and all(e.detail["cause"] == "wrong passwords" for e in locks)
    assert all(e.detail["client"] == bank["client_id"] and e.ip == BANK_IP for e in locks)


def test_unknown_usernames_get_the_same_answers(app, client, bank, connector):
    known = [grant(client, bank, connector["username"], "wrong") for _ in range(7)]
    unknown = [grant(client, bank, "U0NOPE0000", "wrong") for _ in range(7)]
    assert known == unknown
    assert {answer[:2] for answer in known} == {(400, "invalid_grant")}


def test_support_unlock_ends_the_locks_and_the_owner_is_told(app, client, bank, connector, cli):
    _lock(client, bank, connector["username"])
    mail = last_mail(app, connector["owner"])
    assert mail.kind == "connector_locked" and connector["username"] in mail.text and BANK_IP in mail.text
    with app.app_context():
        from idp.services import accounts, support

        owner = accounts.find_by_email(connector["owner"])
        assert support.overview(owner)["locked_connectors"]
    result = cli.invoke(args=["support", "unlock", connector["username"], "--reason", "the bank called"])
    assert result.exit_code == 0, result.output
    assert grant(client, bank, connector["username"], connector["password"])[0] == 200
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "connector.unlocked"))
        assert event.reason == "the bank called" and event.detail["sources_released"] == 1


def test_a_right_password_starts_the_count_again(app, client, bank, connector):
    for _ in range(4):
        grant(client, bank, connector["username"], "wrong")
    assert grant(client, bank, connector["username"], connector["password"])[0] == 200
    for _ in range(4):
        grant(client, bank, connector["username"], "wrong")
    assert grant(client, bank, connector["username"], connector["password"])[0] == 200
