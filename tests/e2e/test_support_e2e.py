"""The support console (F9) in a real browser, with real mail read from the SMTP sink:
a staff member signs in for the first time, finds a customer and resets the customer's
two-step verification with a reason; the customer is told by mail and enrols a new
authenticator at the next sign-in. The console is invisible to everyone else."""

from __future__ import annotations

import re
import secrets
import uuid

import pytest
from playwright.sync_api import expect

from .helpers import (
    Person,
    alert_text,
    at_provider,
    enrol_authenticator,
    enter_email_and_password,
    expect_signed_in,
    first_login_steps,
    open_login,
    portal_home,
    submit,
)

pytestmark = pytest.mark.e2e

REASON = "Lost phone; identity checked by calling back the known number"


@pytest.fixture
def staff(provider) -> Person:
    email = f"helpdesk-{uuid.uuid4().hex[:10]}@example.com"
    password = "Staff-password-" + secrets.token_hex(4)
    provider.cli_json("staff", "create", "--email", email, "--password", password, "--json")
    shown = provider.cli_json("accounts", "show", email, "--json")
    return Person(email=email, password=password, name="", sub=shown["sub"])


def test_staff_resets_two_step_verification_and_the_customer_enrols_again(
    new_context, provider, portal, mailbox, enrolled_person, staff
):
    customer, _ = enrolled_person("Eva Kramer")
    old_authenticator = customer.authenticator

    # The staff member's first sign-in: e-mail, password, the mailed code, enrolment.
    console = new_context().new_page()
    console.goto(provider.url + "/support")
    console.wait_for_url(at_provider(provider.url))
    expect(console.locator("#step [name=email]")).to_be_visible()
    first_login_steps(console, mailbox, staff)
    console.wait_for_url(re.compile(re.escape(provider.url) + r"/support/?$"))

    # The console is a wide page with a bar: who is signed in, signing out, the search.
    expect(console.locator("#staff-member")).to_have_text(staff.email)
    expect(console.locator("button#signout")).to_be_visible()
    assert console.locator("main").bounding_box()["width"] > 900

    # Search with part of the customer's address, open the account.
    search = console.locator("form#search")
    expect(search).to_be_visible()
    part = customer.email.split("@")[0][-8:]
    search.locator("[name=q]").fill(part)
    with console.expect_navigation():
        search.locator("button[type=submit]").click()
    results = console.locator("#results")
    expect(results).to_contain_text(customer.email)
    with console.expect_navigation():
        results.locator("a", has_text=customer.email).click()
    expect(console.locator("#account-status")).to_contain_text(customer.email)
    expect(console.locator("form#search")).to_be_visible()  # still at hand on the account's page
    enrolled_text = console.locator("#totp-enrolled").inner_text().strip()
    # Each action is one group: its name, its own reason, its button.
    groups = console.locator("form.support-action")
    for i in range(groups.count()):
        group = groups.nth(i)
        expect(group.locator("legend")).to_be_visible()
        expect(group.locator("[name=reason]")).to_have_count(1)
        expect(group.locator("button[type=submit]")).to_have_count(1)

    # Reset two-step verification: a reason and the confirmation box.
    form = console.locator("form#reset-2fa")
    form.locator("[name=reason]").fill(REASON)
    form.locator("[name=confirm]").check()
    with console.expect_navigation() as navigation:
        form.locator("button[type=submit]").click()
    assert navigation.value is not None and navigation.value.ok, alert_text(console)
    expect(console.locator('[role="status"]')).to_be_visible()
    expect(console.locator('[role="alert"]')).to_have_count(0)
    expect(console.locator("#totp-enrolled")).not_to_have_text(enrolled_text)
    expect(console.locator('[role="status"]')).to_contain_text("Two-step verification is reset")
    expect(console.locator('[role="status"]')).to_be_in_viewport()
    # The event in the page's language: its name, the outcome as a word, the staff member, the date on one line.
    event = console.locator("#events tbody tr").filter(has_text="Two-step verification reset by support")
    expect(event).to_have_count(1)
    expect(event).to_contain_text(REASON)
    expect(event.locator("td").nth(2)).to_have_text("Succeeded")
    expect(event.locator("td").nth(3)).to_have_text(staff.email)
    when = event.locator("td time")
    assert when.evaluate("t => t.getClientRects().length") == 1, when.inner_text()  # one line box: not wrapped
    expect(console.locator("#events")).not_to_contain_text("support.reset_2fa")
    # The customer's own sign-in, by kind: the staff action is not among them.
    console.locator("#kind").select_option("sign_in")
    with console.expect_navigation():
        console.locator("#event-filters button[type=submit]").click()
    expect(console.locator("#events tbody tr").first).to_be_visible()
    expect(console.locator("#events")).to_contain_text("The person themself")
    expect(console.locator("#events")).not_to_contain_text("reset by support")

    mail = mailbox.wait_for_mail(customer.email, match=r"two-step|tweestaps|twee stappen")
    assert customer.email in mail.text

    # The customer's next sign-in asks for a new authenticator, then goes back to the portal.
    page = new_context().new_page()
    open_login(page, portal.url, provider.url)
    enter_email_and_password(page, customer)
    expect(page.locator("#totp-secret")).to_be_visible()
    new_authenticator = enrol_authenticator(page)
    assert new_authenticator.secret != old_authenticator.secret
    response = submit(page, totp_code=new_authenticator.code())
    assert response.ok, alert_text(page)
    page.wait_for_url(portal_home(portal.url))
    expect_signed_in(page, customer)
    customer.authenticator = new_authenticator

    # The audit trail has the staff action, who did it and why.
    events = provider.cli_json("audit", "list", "--subject", customer.email, "--json")
    resets = [e for e in events if e["action"] == "support.reset_2fa"]
    assert len(resets) == 1, events
    (reset,) = resets
    assert reset["actor"] == f"staff:{staff.email}", reset
    assert reset["reason"] == REASON, reset
    assert reset["subject"] == customer.email and reset["ip"], reset
    assert provider.cli_json("accounts", "show", customer.email, "--json")["totp_enrolled"] is True


def test_console_is_not_found_for_a_signed_in_customer(provider, enrolled_person):
    customer, page = enrolled_person("Frank Dekker")
    page.goto(provider.url + "/account")
    expect(page.locator("#account-email")).to_have_text(customer.email)

    response = page.goto(provider.url + "/support")
    assert response is not None and response.status == 404, f"/support answered {response and response.status}"
    expect(page.locator('[role="alert"]')).to_be_visible()
    expect(page.locator("form#search")).to_have_count(0)
    console_answer = page.locator('[role="alert"]').inner_text().strip()

    # The same page as for an address that does not exist at all.
    response = page.goto(provider.url + "/no-such-page-" + uuid.uuid4().hex[:6])
    assert response is not None and response.status == 404
    expect(page.locator('[role="alert"]')).to_have_text(console_answer)

    # Still signed in: the 404 did not end the session.
    page.goto(provider.url + "/account")
    expect(page.locator("#account-email")).to_have_text(customer.email)
