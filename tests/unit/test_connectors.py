"""Connector users and the ConnectorResetFlow (F7) at a frozen clock: the reset interval,
the lockout of the password grant, the flow's ten minutes and its single-use link."""

from __future__ import annotations

import re

import altcha
import pytest
from sqlalchemy import select

from idp import clock
from idp.errors import FlowExpired, StepOutOfOrder
from idp.extensions import db
from idp.flows import ConnectorResetFlow
from idp.models import ConnectorUser, OutboxMail
from idp.services import captcha, connectors, invitations, passwords
from idp.services.connectors import ConnectorResetRefused
from tests.helpers import GOOD_PASSWORD

from tests.helpers import CTX

pytestmark = pytest.mark.config(CAPTCHA_MAX_NUMBER=1000)
NEW_PASSWORD = "Bank-koppeling-99-Zon"


@pytest.fixture
def connector(ctx):
    invitation, _ = invitations.create("klant@example.com", "Piet Jansen", "Bakkerij Jansen", actor="cli:test",
                                       inviter="Suite ID", locale="en")
    invitations.accept(invitation, password_hash=passwords.hash_password(GOOD_PASSWORD))
    db.session.commit()
    return db.session.scalar(select(ConnectorUser))


@pytest.fixture
def today(connector):
    """The clock frozen at the real present: the CAPTCHA library checks expiry against real time."""
    clock.freeze(None)
    clock.freeze(clock.now())
    return connector


def solved() -> str:
    challenge = altcha.Challenge.from_dict(captcha.new_challenge())
    return altcha.Payload(challenge, altcha.solve_challenge(challenge, timeout=60)).to_base64()


def test_one_reset_per_interval(connector):
    assert connectors.reset_refusal(connector) is None
    connectors.note_reset_requested(connector, link="http://idp.test/x", ip=None, locale="en")
    clock.advance(hours=23, minutes=59)
    assert connectors.reset_refusal(connector) == "24-hour limit"
    clock.advance(minutes=1)
    assert connectors.reset_refusal(connector) is None
    assert connectors.reset_refusal(None) == "unknown username"


@pytest.mark.config(CONNECTOR_RESET_INTERVAL=60, CAPTCHA_MAX_NUMBER=1000)
def test_the_reset_interval_is_a_setting(connector):
    connectors.note_reset_requested(connector, link="http://idp.test/x", ip=None, locale="en")
    clock.advance(seconds=60)
    assert connectors.reset_refusal(connector) is None


def test_wrong_passwords_lock_the_password_grant_from_that_client_and_address(connector):
    connectors.set_password(connector, NEW_PASSWORD, NEW_PASSWORD, ip=None, locale="en")
    bank = {"client_id": "bank", "ip": "192.0.2.1"}
    for _ in range(5):
        assert connectors.authenticate(connector.username, "wrong", **bank) is None
    assert connectors.authenticate(connector.username, NEW_PASSWORD, **bank) is None  # locked
    assert connectors.is_locked(connector)
    assert connectors.authenticate(connector.username, NEW_PASSWORD, client_id="bank", ip="192.0.2.2") is connector
    clock.advance(minutes=15)
    assert connectors.authenticate(connector.username, NEW_PASSWORD, **bank) is connector
    assert not connectors.is_locked(connector)


def test_the_flow_mails_a_link_that_works_once(today):
    connector = today
    flow = ConnectorResetFlow.start()
    assert flow.advance("identify", {"username": connector.username, "altcha": solved()}, CTX) == "verify"
    assert flow.advance("verify", {"username": connector.username.lower()}, CTX) == "sent"
    mail = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "connector_reset")).one()
    assert "10 minutes" in mail.text
    token = re.search(r"/connector-password/([\w-]+)", mail.text).group(1)
    linked = ConnectorResetFlow.by_link(token)
    assert linked.connector is connector
    linked.set_password({"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}, CTX)
    assert passwords.verify_password(connector.password_hash, NEW_PASSWORD)
    assert ConnectorResetFlow.by_link(token) is None
    with pytest.raises(StepOutOfOrder):
        linked.set_password({"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}, CTX)


def test_the_flow_lasts_ten_minutes(today):
    connector = today
    flow = ConnectorResetFlow.start()
    flow.advance("identify", {"username": connector.username, "altcha": solved()}, CTX)
    flow.advance("verify", {"username": connector.username}, CTX)
    token = re.search(r"/connector-password/([\w-]+)", db.session.scalars(select(OutboxMail.text).where(
        OutboxMail.kind == "connector_reset")).one()).group(1)
    clock.advance(minutes=10)
    assert ConnectorResetFlow.by_link(token) is None
    with pytest.raises(FlowExpired):
        flow.advance("sent", {}, CTX)


def test_every_refusal_is_the_same_answer(today):
    connector = today
    flow = ConnectorResetFlow.start()
    with pytest.raises(ConnectorResetRefused):
        flow.advance("identify", {"username": connector.username, "altcha": "bm90IGEgc29sdXRpb24="}, CTX)
    flow.advance("identify", {"username": "UNKNOWN1234", "altcha": solved()}, CTX)
    with pytest.raises(ConnectorResetRefused):
        flow.advance("verify", {"username": "UNKNOWN1234"}, CTX)
    assert db.session.scalar(select(OutboxMail).where(OutboxMail.kind == "connector_reset")) is None
