"""Access management, firm codes and the firm portal's rows as services, at a frozen clock."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import clock
from idp.errors import (AlreadyHasAccess, FirmAlreadyLinked, InvalidInput, InvitationStillOpen, LastOwner,
                        NoAccessToRemove, NoOpenInvitation, NotOwner, UnknownAdministration, UnknownFirmCode)
from idp.extensions import db
from idp.models import AuditEvent, Invitation, OutboxMail
from idp.services import access, accounts, administrations, firms, invitations
from tests.helpers import T0


@pytest.fixture
def owner(ctx):
    account = accounts.create_account("anna@example.com", "secret password", name="Anna")
    db.session.commit()
    return account


@pytest.fixture
def company(owner):
    administration = administrations.create_company("Bakkerij Jansen", owner)
    db.session.commit()
    return administration


def person(email, name=""):
    account = accounts.create_account(email, "secret password", name=name)
    db.session.commit()
    return account


def grant(company, email, role="accountant"):
    status = access.grant(company, email, role, actor="cli:test", inviter="Anna", locale="en")
    db.session.commit()
    return status


def test_owned_by_tells_strangers_nothing_and_members_who_decides(company, owner):
    assert access.owned_by(owner, company.id) is company
    bert = person("bert@example.com")
    for identifier in (company.id, "no-such-id", "", None, "x" * 500):
        with pytest.raises(UnknownAdministration):
            access.owned_by(bert, identifier)
    grant(company, "bert@example.com", "employee")
    with pytest.raises(NotOwner):
        access.owned_by(bert, company.id)


def test_grant_to_an_account_and_to_an_address_without_one(company):
    bert = person("bert@example.com", "Bert")
    assert grant(company, "BERT@example.com") == "granted"
    assert administrations.membership_of(bert, company).role == "accountant"
    assert grant(company, "new@example.com", "employee") == "invited"
    invitation = db.session.scalar(select(Invitation))
    assert (invitation.role, invitation.target_id, invitation.expires_at) == ("employee", company.id,
                                                                             T0 + dt.timedelta(days=14))
    assert [(m.email, m.role, m.invited) for m in access.members(company)] == [
        ("anna@example.com", "owner", False), ("bert@example.com", "accountant", False),
        ("new@example.com", "employee", True)]
    assert access.listed(company) == [{"email": "anna@example.com", "role": "owner"},
                                      {"email": "bert@example.com", "role": "accountant"}]
    kinds = [m.kind for m in db.session.scalars(select(OutboxMail).order_by(OutboxMail.id))]
    assert kinds == ["access_granted", "invitation"]
    details = [e.detail for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "access.granted"))]
    assert details == [{"administration": company.id, "role": "accountant", "status": "granted"},
                       {"administration": company.id, "role": "employee", "status": "invited"}]


def test_an_accepted_access_invitation_joins_the_administration(company):
    grant(company, "new@example.com", "owner")
    invitation = db.session.scalar(select(Invitation))
    account = invitations.accept(invitation, password_hash="x")
    db.session.commit()
    assert administrations.membership_of(account, company).role == "owner"
    assert administrations.accessible(account) == [{"id": company.id, "name": "Bakkerij Jansen", "role": "owner"}]


def test_refusals(company):
    person("bert@example.com")
    grant(company, "bert@example.com")
    with pytest.raises(AlreadyHasAccess):
        grant(company, "bert@example.com", "employee")
    with pytest.raises(AlreadyHasAccess):
        grant(company, "anna@example.com", "owner")
    with pytest.raises(InvalidInput):
        grant(company, "x@example.com", "director")
    grant(company, "new@example.com", "employee")
    with pytest.raises(InvitationStillOpen) as refused:
        grant(company, "NEW@example.com", "accountant")
    assert refused.value.invitation.email == "new@example.com" and refused.value.invitation.target_id == company.id
    # An invitation that expired is no longer open: the address may be invited again.
    clock.advance(days=15)
    assert grant(company, "new@example.com", "accountant") == "invited"


def test_revoke_keeps_the_last_owner(company, owner):
    with pytest.raises(LastOwner):
        access.revoke(company, "anna@example.com", actor="cli:test")
    person("bert@example.com")
    grant(company, "bert@example.com", "owner")
    assert access.revoke(company, "anna@example.com", actor="cli:test") == "revoked"
    db.session.commit()
    assert administrations.owners(company)[0].email == "bert@example.com"
    with pytest.raises(LastOwner):
        access.revoke(company, "bert@example.com", actor="cli:test")
    with pytest.raises(NoAccessToRemove):
        access.revoke(company, "anna@example.com", actor="cli:test")
    with pytest.raises(NoAccessToRemove):
        access.revoke(company, "not an address", actor="cli:test")


def test_revoke_withdraws_an_open_invitation(company):
    grant(company, "new@example.com", "employee")
    assert access.revoke(company, "new@example.com", actor="cli:test") == "withdrawn"
    db.session.commit()
    assert db.session.scalar(select(Invitation)).status(clock.now()) == "revoked"
    assert [m.email for m in access.members(company)] == ["anna@example.com"]


def test_the_claim_follows_memberships_and_the_firms_clients(company, owner):
    bert = person("bert@example.com")
    firm = administrations.create_firm("Boekhouders BV")
    administrations.add_member(bert, firm, "accountant")
    db.session.commit()
    assert administrations.accessible(bert) == [{"id": firm.id, "name": "Boekhouders BV", "role": "accountant"}]
    firms.link(company, firm.firm_code, actor=owner.id)
    db.session.commit()
    db.session.expire_all()
    reach = administrations.reachable(bert)
    assert [(r.administration.name, r.role, r.via) for r in reach] == [
        ("Bakkerij Jansen", "accountant", firm), ("Boekhouders BV", "accountant", None)]
    # A personal membership wins over the firm's access (its own role).
    grant(company, "bert@example.com", "employee")
    db.session.expire_all()
    assert ("Bakkerij Jansen", "employee") in {(a["name"], a["role"]) for a in administrations.accessible(bert)}


def test_firm_codes(ctx):
    firm = administrations.create_firm("Boekhouders BV")
    code = firm.firm_code
    assert len(code) == 8 and set(code) <= set(administrations.FIRM_CODE_ALPHABET)
    assert firms.shown_code(code) == f"{code[:4]}-{code[4:]}"
    for typed in (code, code.lower(), f" {code[:4]}-{code[4:]} ", f"{code[:4]} {code[4:]}", f"{code[:4]}.{code[4:]}"):
        assert firms.normalize_code(typed) == code and firms.by_code(typed) is firm
    for typed in ("", None, 12345678, "ABCDEFG", "ABCDEFGHI", "ABCD-EFG0", "ABCD-EFGI", "x" * 100):
        assert firms.normalize_code(typed) is None
        with pytest.raises(UnknownFirmCode):
            firms.by_code(typed)
    assert administrations.create_firm("Tweede").firm_code != code


def test_link_and_unlink(company, owner):
    firm = administrations.create_firm("Boekhouders BV")
    assert firms.link(company, firm.firm_code, actor=owner.id) is firm
    with pytest.raises(FirmAlreadyLinked):
        firms.link(company, firm.firm_code, actor=owner.id)
    with pytest.raises(InvalidInput):
        firms.link(firm, firm.firm_code, actor=owner.id)
    assert [link.firm for link in firms.linked(company)] == [firm]
    firms.unlink(company, firm.id, actor=owner.id)
    assert firms.linked(company) == []
    with pytest.raises(NoAccessToRemove):
        firms.unlink(company, firm.id, actor=owner.id)


def test_portal_rows(company, owner):
    bert = person("bert@example.com")
    firm = administrations.create_firm("Boekhouders BV")
    administrations.add_member(bert, firm, "accountant")
    firms.link(company, firm.firm_code, actor=owner.id)
    clock.advance(days=1)
    other_owner = person("kees@example.com", "Kees")
    personal = administrations.create_company("Viswinkel Kees", other_owner)
    administrations.add_member(bert, personal, "accountant")
    invitations.create("piet@example.com", "Piet", "Fietsen Piet", firm=firm, actor="cli:test", inviter="Bert")
    gone, _ = invitations.create("weg@example.com", "Weg", "Weg BV", firm=firm, actor="cli:test", inviter="Bert")
    invitations.revoke(gone, actor="cli:test")
    db.session.commit()
    rows = firms.portal(firm, bert)
    assert [(r.name, r.owner, r.access, r.since) for r in rows] == [
        ("Bakkerij Jansen", "Anna", "firm", T0),
        ("Fietsen Piet", "Piet", "invited", T0 + dt.timedelta(days=1)),
        ("Viswinkel Kees", "Kees", "personal", T0 + dt.timedelta(days=1)),
    ]
    assert [r.name for r in firms.portal(firm, bert, "  KEES@ ")] == ["Viswinkel Kees"]
    assert firms.portal(firm, bert, "nobody") == []
    clock.advance(days=15)  # the invitation expired: no longer waiting
    assert [r.access for r in firms.portal(firm, bert)] == ["firm", "personal"]
    chosen, all_firms = firms.choose(bert, "not-a-firm")
    assert chosen is firm and all_firms == [firm]
    assert firms.choose(owner, None) == (None, [])


def test_an_open_invitation_is_resent_or_withdrawn_by_its_id(company):
    grant(company, "new@example.com", "employee")
    (invitation,) = db.session.scalars(select(Invitation)).all()
    old_hash = invitation.token_hash
    clock.advance(days=3)
    assert access.resend(company, invitation.id, actor="cli:test", inviter="Anna") == "resent"
    db.session.commit()
    assert invitation.token_hash != old_hash and invitation.expires_at == clock.now() + dt.timedelta(days=14)
    assert access.withdraw(company, invitation.id, actor="cli:test") == "withdrawn"
    db.session.commit()
    assert invitation.revoked_at is not None
    # Withdrawn: neither resent nor withdrawn again; nor is another administration's id taken here.
    for act in (lambda: access.resend(company, invitation.id, actor="cli:test", inviter="Anna"),
                lambda: access.withdraw(company, invitation.id, actor="cli:test")):
        with pytest.raises(NoOpenInvitation):
            act()
    other = administrations.create_company("Andere Zaak", person("piet@example.com"))
    grant(other, "new@example.com", "employee")
    foreign = db.session.scalar(select(Invitation).where(Invitation.target_id == other.id))
    with pytest.raises(NoOpenInvitation):
        access.withdraw(company, foreign.id, actor="cli:test")
    assert foreign.revoked_at is None
