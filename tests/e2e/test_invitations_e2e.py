"""Invitations as the people who send and receive them see them, in a real browser with real
mail: a second invitation to the same address is refused with a button that sends the open one
again, withdrawing asks first (a page, no script needed), resend says it was sent; an address
that already has an account is asked to sign in to accept, and does so."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from .helpers import alert_text, enter_email_and_password, field, link_in, submit

pytestmark = pytest.mark.e2e


def click_and_wait(page: Page, selector: str):
    with page.expect_navigation() as navigation:
        page.locator(selector).click()
    return navigation.value


def invite(page: Page, email: str, administration: str):
    page.locator("#invite [name=email]").fill(email)
    page.locator("#invite [name=name]").fill("Karin Klant")
    page.locator("#invite [name=administration]").fill(administration)
    return click_and_wait(page, "#invite button#send")


def test_a_second_invitation_offers_resend_and_withdrawing_asks_first(enrolled_person, new_context, provider, mailbox):
    tag = uuid.uuid4().hex[:6]
    firm = provider.cli_json("firms", "create", "--name", f"Boekhouders {tag} BV", "--json")["administration_id"]
    person, page = enrolled_person("Bert Boekhouder")
    provider.cli("access", "grant", "--administration", firm, "--email", person.email, "--role", "owner")
    client = f"karin-{tag}@example.com"

    # Client management: the first invitation goes out; the page says so.
    page.goto(f"{provider.url}/firm?lang=en")
    click_and_wait(page, "a#client-management")
    assert invite(page, client, f"Karins Winkel {tag}").ok
    expect(page.locator('[role="status"]')).to_have_text("The invitation has been sent.")
    first = link_in(mailbox.wait_for_mail(client), provider.url)

    # The same address and administration again: refused, with the open invitation to resend.
    response = invite(page, client.upper(), f"karins winkel {tag}")
    assert response.status == 409
    expect(page.locator('[role="alert"]')).to_contain_text("still open")
    expect(page.locator("#invite [name=email]")).to_have_value(client.upper())
    expect(page.locator("#invitations tbody tr")).to_have_count(1)
    click_and_wait(page, "#resend-open button#resend-invitation")
    expect(page.locator('[role="status"]')).to_contain_text("sent again")
    second = link_in(mailbox.wait_for_mail(client), provider.url)
    assert second != first

    # The old link no longer works; the new one does.
    visitor = new_context().new_page()
    visitor.goto(first)
    expect(visitor.locator('[role="alert"]')).to_contain_text("not valid")
    visitor.goto(second)
    expect(visitor.locator("#invitation-email")).to_have_text(client)

    # Withdrawing asks first, in a browser without JavaScript too: Cancel keeps it, confirming withdraws it.
    plain = new_context(java_script_enabled=False, storage_state=page.context.storage_state()).new_page()
    plain.goto(page.url)
    row = plain.locator("#invitations tbody tr").filter(has_text=client)
    click_and_wait(plain, "#invitations form.revoke button")
    expect(plain.locator("h1")).to_have_text(f"Withdraw the invitation to {client}?")
    expect(plain.locator("#invitation")).to_contain_text(f"Karins Winkel {tag}")
    click_and_wait(plain, "a#keep-invitation")
    expect(row.locator(".status")).to_have_text("Sent")
    click_and_wait(plain, "#invitations form.revoke button")
    click_and_wait(plain, "#confirm-withdraw button[type=submit]")
    expect(plain.locator('[role="status"]')).to_have_text("The invitation has been withdrawn.")
    expect(row.locator(".status")).to_have_text("Revoked")
    visitor.goto(second)
    expect(visitor.locator('[role="alert"]')).to_contain_text("withdrawn")

    # The access page of the administration does the same for a colleague's invitation.
    colleague = f"collega-{tag}@example.com"
    page.goto(f"{provider.url}/administrations/{firm}/access?lang=en")
    for attempt in (1, 2):
        page.locator("#grant-access [name=email]").fill(colleague)
        page.locator("#grant-access [name=role]").select_option("employee")
        response = click_and_wait(page, "#grant-access button[type=submit]")
        assert response.status == (200 if attempt == 1 else 409), alert_text(page)
    expect(page.locator('[role="alert"]')).to_contain_text("still open")
    link_in(mailbox.wait_for_mail(colleague), provider.url)
    click_and_wait(page, "#resend-open button#resend-invitation")
    expect(page.locator('[role="status"]')).to_contain_text("sent again")
    link_in(mailbox.wait_for_mail(colleague), provider.url)
    member = page.locator("#members tr").filter(has_text=colleague)
    click_and_wait(page, f'#members tr[data-email="{colleague}"] form.withdraw-invitation button')
    expect(page.locator("h1")).to_have_text(f"Withdraw the invitation to {colleague}?")
    click_and_wait(page, "#confirm-withdraw button[type=submit]")
    expect(page.locator('[role="status"]')).to_have_text("The invitation has been withdrawn.")
    expect(member).to_have_count(0)


def test_an_address_with_an_account_signs_in_to_accept(enrolled_person, new_context, provider, mailbox):
    tag = uuid.uuid4().hex[:6]
    person, _ = enrolled_person("Anna Ondernemer")
    administration = f"Tweede Zaak {tag}"
    provider.cli("invitations", "create", "--email", person.email, "--administration", administration,
                 "--name", person.name, "--locale", "en", "--json")
    mail = mailbox.wait_for_mail(person.email, match=re.escape(administration))
    assert "sign in to accept" in mail.text and "create your account" not in mail.text

    # A browser that is not signed in: the page says sign in to accept, and asks no new password.
    page = new_context().new_page()
    page.goto(link_in(mail, provider.url))
    expect(page.locator("h1")).to_have_text("Sign in to accept")
    expect(page.locator("#main")).to_contain_text(f"There is already an account for {person.email}")
    expect(page.locator("[name=password]")).to_have_count(0)
    submit(page)
    expect(field(page, "email")).to_have_value(person.email)  # the sign-in knows the address
    enter_email_and_password(page, person)
    submit(page, totp_code=person.authenticator.code())
    # Back at the invitation, signed in: it says as whom, and goes on only when asked.
    expect(page.locator("h1")).to_have_text("Sign in to accept")
    expect(page.locator("#main")).to_contain_text(f"You are signed in as {person.email}")
    response = submit(page)
    assert response.ok, alert_text(page)
    expect(page.locator("#contract")).to_contain_text(administration)
    field(page, "accept_terms").check()
    field(page, "accept_privacy").check()
    response = submit(page)
    assert response.ok, alert_text(page)
    expect(page.locator("#step")).to_have_count(0)
    page.goto(f"{provider.url}/account?lang=en")
    expect(page.locator("#administrations")).to_contain_text(administration)
