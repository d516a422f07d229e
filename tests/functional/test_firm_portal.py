"""F8 the firm portal (/firm) and the firm code: what a firm's accountants see, and how a
client gives a firm access from the access page by its code."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, FirmClient, Invitation
from tests.helpers import (FULL, add_member, decode, form_with, invite, mail_count, make_account, make_company, make_firm,
                           post_form, refresh, signed_in_at_provider, tokens_for)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def accountant(app):
    return make_account(app, "bert@boekhouders.example", PASSWORD, name="Bert Boekhouder")


@pytest.fixture
def firm(app, accountant):
    return make_firm(app, "Boekhouders BV", accountants=[accountant["email"]])


@pytest.fixture
def owner(app):
    return make_account(app, "anna@example.com", PASSWORD, name="Anna de Vries")


def rows(browser) -> list[str]:
    table = re.search(r'<table class="list" id="clients">(.*?)</table>', browser.text, re.S)
    if table is None:
        return []
    body = table.group(1).split("<tbody>", 1)[1]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("</tr>") if "<td" in row]


def test_firms_create_gives_the_firm_code(cli):
    data = json.loads(cli.invoke(args=["firms", "create", "--name", "Cijfers BV", "--json"]).stdout)
    assert set(data) == {"administration_id", "firm_code"} and re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", data["firm_code"])
    text = cli.invoke(args=["firms", "create", "--name", "Cijfers BV"]).stdout
    assert re.search(r"^firm_code: [A-Z0-9]{8}$", text, re.M)
    other = json.loads(cli.invoke(args=["firms", "create", "--name", "Cijfers BV", "--json"]).stdout)
    assert other["firm_code"] != data["firm_code"]


def test_the_portal_lists_the_firms_clients_with_owner_since_and_invitations(app, cli, firm, accountant, owner):
    linked = make_company(app, owner["email"], "Bakkerij Jansen")
    with app.app_context():
        db.session.add(FirmClient(firm_id=firm["administration_id"], administration_id=linked))
        db.session.commit()
    personal_owner = make_account(app, "kees@example.com", PASSWORD, name="Kees Visser")
    personal = make_company(app, personal_owner["email"], "Viswinkel Kees")
    add_member(app, accountant["email"], personal, "accountant")
    make_company(app, personal_owner["email"], "Not a client")
    invite(cli, "piet@example.com", "Fietsen Piet", "--firm", firm["administration_id"])

    b = signed_in_at_provider(app, accountant)
    assert 'id="firm-portal"' in b.text
    b.get("/firm")
    assert b.status == 200
    assert b.page.ids["firm-code"].replace("-", "") == firm["firm_code"]
    assert f'href="/firms/{firm["administration_id"]}/invitations"' in b.text and 'id="client-management"' in b.text
    listed = rows(b)
    assert len(listed) == 3, listed
    assert listed[0].startswith("Bakkerij Jansen Anna de Vries anna@example.com") and "firm" in listed[0]
    assert listed[1].startswith("Fietsen Piet Piet Jansen piet@example.com") and "Invitation sent" in listed[1]
    assert listed[2].startswith("Viswinkel Kees Kees Visser") and "given to you" in listed[2]
    assert all(re.search(r"\d{1,2} \w{3,4}\.? \d{4}", row) for row in listed), listed

    b.get("/firm?q=kees")
    assert [row.split(" Kees")[0] for row in rows(b)] == ["Viswinkel"]
    b.get("/firm?q=ANNA@example")
    assert len(rows(b)) == 1 and rows(b)[0].startswith("Bakkerij Jansen")
    b.get("/firm?q=nothing-like-this")
    assert rows(b) == [] and b.status == 200


def test_a_person_in_two_firms_switches_between_them(app, accountant, owner):
    first = make_firm(app, "Alfa Accountants", accountants=[accountant["email"]])
    second = make_firm(app, "Beta Boekhouders", accountants=[accountant["email"]])
    client = make_company(app, owner["email"], "Bakkerij Jansen")
    with app.app_context():
        db.session.add(FirmClient(firm_id=second["administration_id"], administration_id=client))
        db.session.commit()
    b = signed_in_at_provider(app, accountant)
    b.get("/firm")
    assert "firm-switcher" in b.page.ids and b.page.ids["firm-code"].replace("-", "") == first["firm_code"]
    assert rows(b) == []
    b.get(f"/firm?firm={second['administration_id']}")
    assert b.page.ids["firm-code"].replace("-", "") == second["firm_code"] and len(rows(b)) == 1
    # A firm the person is no accountant of is not shown, whatever the address says.
    stranger_firm = make_firm(app, "Gamma")
    b.get(f"/firm?firm={stranger_firm['administration_id']}")
    assert b.page.ids["firm-code"].replace("-", "") == first["firm_code"]


def test_the_portal_is_for_a_firms_accountants_only(app, firm, owner):
    b = signed_in_at_provider(app, owner)
    assert 'id="firm-portal"' not in b.text
    b.get("/firm")
    assert b.status == 403 and b.alert
    anonymous = type(b)(app)
    anonymous.get("/firm", follow=False)
    assert anonymous.status == 302 and "/login/" in anonymous.location


# -- the client links a firm by its code ----------------------------------------------------


def test_an_owner_links_and_unlinks_a_firm_by_its_code(app, firm, accountant, owner, portal):
    company = make_company(app, owner["email"], "Bakkerij Jansen")
    bert = signed_in_at_provider(app, accountant)
    tokens = tokens_for(bert, portal, scope=FULL)
    assert [a["name"] for a in decode(bert.http, tokens["id_token"]).claims["administrations"]] == ["Boekhouders BV"]

    anna = signed_in_at_provider(app, owner)
    anna.get(f"/administrations/{company}/access")
    code = firm["firm_code"]
    anna.submit("link-firm", firm_code=f" {code[:4].lower()}-{code[4:]} ")
    assert anna.url.endswith("done=linked") and "Boekhouders BV" in anna.page.ids["firms"]

    tokens = refresh(bert.http, portal, tokens["refresh_token"]).get_json()
    claim = decode(bert.http, tokens["id_token"]).claims["administrations"]
    assert {(a["name"], a["role"]) for a in claim} == {("Boekhouders BV", "accountant"), ("Bakkerij Jansen", "accountant")}
    bert.get("/firm")
    assert rows(bert)[0].startswith("Bakkerij Jansen Anna de Vries")

    anna.submit("link-firm", firm_code=code)
    assert anna.status == 409 and anna.alert
    post_form(anna, form_with(anna, f"/firms/{firm['administration_id']}/unlink"))
    assert anna.url.endswith("done=unlinked") and "firms" not in anna.page.ids
    tokens = refresh(bert.http, portal, tokens["refresh_token"]).get_json()
    assert [a["name"] for a in decode(bert.http, tokens["id_token"]).claims["administrations"]] == ["Boekhouders BV"]
    with app.app_context():
        events = [(e.action, e.actor, e.subject, e.detail["administration"], e.detail["firm"], e.detail["role"])
                  for e in db.session.scalars(select(AuditEvent).where(
                      AuditEvent.action.in_(["firm.linked", "firm.unlinked"])).order_by(AuditEvent.id))]
    firm_id = firm["administration_id"]
    assert events == [("firm.linked", owner["sub"], firm_id, company, "Boekhouders BV", "accountant"),
                      ("firm.unlinked", owner["sub"], firm_id, company, "Boekhouders BV", "accountant")]


@pytest.mark.parametrize("typed", ["", "ABCD", "ABCD-EFG1", "<script>", "x" * 50])
def test_an_unknown_or_foreign_firm_code_is_refused(app, firm, owner, typed):
    company = make_company(app, owner["email"], "Bakkerij Jansen")
    other = make_company(app, owner["email"], "Tweede Zaak")
    with app.app_context():
        from idp.models import Administration

        # The code-like value of something that is not a firm: refused like any unknown code.
        db.session.get(Administration, other).firm_code = "QRSTUVWX"
        db.session.commit()
    anna = signed_in_at_provider(app, owner)
    for code in (typed, "QRSTUVWX"):
        anna.get(f"/administrations/{company}/access")
        anna.submit("link-firm", firm_code=code)
        assert anna.status == 400 and "firm" in anna.alert.lower()
    with app.app_context():
        assert db.session.scalar(select(FirmClient.id)) is None


def test_an_open_invitation_is_resent_or_withdrawn_from_the_portal(app, cli, firm, accountant):
    data = invite(cli, "piet@example.com", "Fietsen Piet", "--firm", firm["administration_id"])
    actions = f"/firms/{firm['administration_id']}/invitations/{data['id']}"
    b = signed_in_at_provider(app, accountant)
    b.get("/firm")
    post_form(b, form_with(b, actions + "/resend"))
    assert b.status == 200 and "/firm?" in b.url and b.url.endswith("done=resent") and "sent again" in b.page.ids["main"]
    assert mail_count(app, "piet@example.com") == 2
    # Revoke asks first; Cancel goes back to the portal, confirming withdraws and comes back to it.
    post_form(b, form_with(b, actions + "/revoke"))
    assert b.status == 200 and "piet@example.com" in b.page.ids["main"] and "confirm-withdraw" in b.page.forms
    assert re.search(r'id="keep-invitation" href="/firm\?firm=', b.text)
    b.submit("confirm-withdraw")
    assert "/firm?" in b.url and b.url.endswith("done=revoked") and "withdrawn" in b.page.ids["main"]
    assert rows(b) == []
    with app.app_context():
        assert db.session.get(Invitation, data["id"]).revoked_at is not None
