"""Invitations and the InvitationFlow (F1, F2) at a frozen clock: lifetime, resend, revoke,
the flow's steps and its expiry."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from idp import clock
from idp.errors import FlowExpired, InvitationStillOpen, InvitationUnusable, StepOutOfOrder, TermsNotAccepted
from idp.extensions import db
from idp.flows import InvitationFlow
from idp.models import Account, EmailCode, Membership, OutboxMail
from idp.services import administrations, invitations
from tests.helpers import GOOD_PASSWORD

from tests.helpers import CTX, T0


def invite(email="klant@example.com"):
    invitation, url = invitations.create(email, "Piet Jansen", "Bakkerij Jansen", actor="cli:test", inviter="Suite ID",
                                         locale="en")
    db.session.commit()
    return invitation, url


def test_an_invitation_lasts_fourteen_days(ctx):
    invitation, url = invite()
    assert invitation.expires_at - T0 == dt.timedelta(days=14)
    assert invitations.by_token(url.rsplit("/", 1)[1]) is invitation
    clock.advance(days=14)
    with pytest.raises(InvitationUnusable):
        invitations.by_token(url.rsplit("/", 1)[1])
    assert invitation.status(clock.now()) == "expired"


def test_resend_gives_a_fresh_link_and_a_new_fortnight(ctx):
    invitation, old = invite()
    clock.advance(days=10)
    new = invitations.resend(invitation, actor="cli:test", inviter="Suite ID")
    clock.advance(days=13)
    assert invitations.by_token(new.rsplit("/", 1)[1]) is invitation
    with pytest.raises(InvitationUnusable):
        invitations.by_token(old.rsplit("/", 1)[1])


@pytest.mark.config(INVITATION_LIFETIME=3600)
def test_the_lifetime_is_a_setting(ctx):
    invitation, _ = invite()
    clock.advance(hours=1)
    assert invitation.status(clock.now()) == "expired"


def test_a_revoked_invitation_cannot_be_resent(ctx):
    invitation, _ = invite()
    invitations.revoke(invitation, actor="cli:test")
    with pytest.raises(InvitationUnusable):
        invitations.resend(invitation, actor="cli:test", inviter="Suite ID")


def test_a_second_open_invitation_to_the_same_administration_is_refused(ctx):
    first, _ = invite()
    with pytest.raises(InvitationStillOpen) as refused:
        invitations.create("KLANT@example.com", "Piet", " bakkerij jansen ", actor="cli:test", inviter="Suite ID")
    assert refused.value.invitation is first and first.id in refused.value.plain()
    # Another administration, or another firm's invitation, is another invitation.
    firm = administrations.create_firm("Boekhouders BV")
    invitations.create("klant@example.com", "Piet", "Bakkerij Jansen", firm=firm, actor="cli:test", inviter="B")
    invitations.create("klant@example.com", "Piet", "Slagerij Jansen", actor="cli:test", inviter="Suite ID")
    # Once the first is withdrawn, or has expired, the address may be invited again.
    invitations.revoke(first, actor="cli:test")
    again, _ = invite()
    clock.advance(days=14)
    assert invite()[0] is not again


def _code(email):
    mail = db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == email).order_by(OutboxMail.id.desc())).first()
    return re.search(r"(?<!\d)(\d{6})(?!\d)", mail.text).group(1)


def test_the_flow_creates_the_account_at_the_contract_step(ctx):
    invitation, _ = invite()
    flow = InvitationFlow.start(invitation)
    assert flow.state == "intro"
    assert flow.advance("intro", {}, CTX) == "email_code"
    assert flow.advance("email_code", {"email_code": _code("klant@example.com")}, CTX) == "password"
    assert flow.advance("password", {"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD}, CTX) == "contract"
    assert db.session.scalar(select(Account).where(Account.email == "klant@example.com")) is None
    with pytest.raises(TermsNotAccepted):
        flow.advance("contract", {"accept_terms": "yes"}, CTX)
    assert flow.advance("contract", {"accept_terms": "yes", "accept_privacy": "yes"}, CTX) == "done"
    account = db.session.scalar(select(Account).where(Account.email == "klant@example.com"))
    assert db.session.scalar(select(Membership).where(Membership.account_id == account.id)).role == "owner"
    assert flow.data.get("password_hash") is None and invitation.accepted_at == clock.now()


def test_the_flow_refuses_a_stale_step_and_expires(ctx):
    invitation, _ = invite()
    flow = InvitationFlow.start(invitation)
    with pytest.raises(StepOutOfOrder):
        flow.advance("password", {}, CTX)
    clock.advance(seconds=int((flow.row.expires_at - clock.now()).total_seconds()))
    with pytest.raises(FlowExpired):
        flow.advance("intro", {}, CTX)


def test_the_flow_stops_when_the_invitation_is_revoked(ctx):
    invitation, _ = invite()
    flow = InvitationFlow.start(invitation)
    invitations.revoke(invitation, actor="cli:test")
    with pytest.raises(InvitationUnusable):
        flow.advance("intro", {}, CTX)
    assert db.session.scalar(select(EmailCode)) is None
