"""F8 in a real browser with real mail: an entrepreneur signs up for a trial, signs in for
the first time through the demo portal, gives an accountant of a firm access; the accountant
sees the client in the firm portal and in the `administrations` claim; the owner removes the
access and the claim drops at the accountant's next refresh. The portal sees all of it through
standard OpenID Connect only (ID token claims and userinfo)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from .helpers import (
    Person,
    alert_text,
    enrol_authenticator,
    enter_email_and_password,
    expect_password_rules,
    expect_signed_in,
    field,
    first_login,
    open_login,
    portal_administrations,
    portal_home,
    submit,
    type_new_password,
)

pytestmark = pytest.mark.e2e

PASSWORD = "Zomer-fiets-42-Kaas"
CAPTCHA_TIMEOUT_MS = 30_000


def address(first_name: str) -> str:
    return f"{first_name.lower()}-{uuid.uuid4().hex[:10]}@example.com"


def step(page: Page, **fields) -> None:
    response = submit(page, **fields)
    assert response.ok, f"{page.url} answered {response.status}: {alert_text(page)}"


def sign_up(page: Page, provider_url: str, mailbox, company: str, email: str) -> None:
    """/signup from the start page's link to the done page."""
    page.goto(provider_url + "/?lang=en")
    with page.expect_navigation():
        page.locator("a#signup").click()
    # The company, its bank account and the person on one page; the button waits for the
    # browser to solve the CAPTCHA. A mistyped IBAN is named and everything typed stays.
    field(page, "company_name").fill(company)
    field(page, "kvk_number").fill("1234 5678")
    field(page, "address").fill("Dorpsstraat 1, 1234 AB Utrecht")
    field(page, "iban").fill("NL91 ABNA 0417 1643 01")
    field(page, "name").fill("Piet Jansen")
    field(page, "email").fill(email)
    button = page.locator("#step button[type=submit]")
    for iban, status in (("NL91 ABNA 0417 1643 01", 400), ("NL91 ABNA 0417 1643 00", 200)):
        field(page, "iban").fill(iban)
        expect(button).to_be_disabled()
        page.locator("#captcha").click()
        expect(button).to_be_enabled(timeout=CAPTCHA_TIMEOUT_MS)
        response = submit(page)
        assert response.status == status, alert_text(page)
        if status == 400:
            expect(page.locator('[role="alert"]')).to_contain_text("check digits")
            expect(field(page, "company_name")).to_have_value(company)
    step(page, email_code=mailbox.code_for(email))
    type_new_password(page, PASSWORD)
    expect_password_rules(page)
    step(page)
    expect(page.locator("#contract")).to_contain_text(company)
    trial = page.locator("#plan").inner_text()
    assert re.fullmatch(r"Trial until \d{1,2} \w{3} \d{4}", trial), trial
    field(page, "accept_terms").check()
    field(page, "accept_privacy").check()
    step(page)  # no firm code: the accountant gets access later
    expect(page.locator("#step")).to_have_count(0)
    expect(page.locator("#plan")).to_have_text(trial)


def first_login_after_sign_up(page: Page, portal_url: str, provider_url: str, person: Person) -> None:
    """The sign-up confirmed the address: the first sign-in goes straight to the authenticator."""
    open_login(page, portal_url, provider_url)
    enter_email_and_password(page, person)
    expect(field(page, "email_code")).to_have_count(0)
    person.authenticator = enrol_authenticator(page)
    submit(page, totp_code=person.authenticator.code())
    page.wait_for_url(portal_home(portal_url))
    expect_signed_in(page, person)


def claimed(page: Page) -> dict[str, set[tuple[str, str]]]:
    """The administrations the portal was told, per source (ID token claims, userinfo)."""
    found = portal_administrations(page)
    assert set(found) == {"#claims", "#userinfo"}, found
    return {table: {(a["name"], a["role"]) for a in value} for table, value in found.items()}


def refresh_at_portal(page: Page) -> None:
    with page.expect_navigation():
        page.locator("#refresh button[type=submit]").click()
    expect(page.locator("#refresh-result")).to_be_visible()


def test_sign_up_grant_access_to_an_accountant_and_remove_it(new_context, provider, portal, mailbox):
    tag = uuid.uuid4().hex[:6]
    company, firm_name = f"Fietsenmaker Piet {tag}", f"Boekhouders {tag} BV"

    # An accountancy firm with an accountant who has an account already.
    firm = provider.cli_json("firms", "create", "--name", firm_name, "--json")
    bert_email = address("Bert")
    bert = Person(email=bert_email, password="correct horse battery " + tag, name="Bert Boekhouder",
                  sub=provider.cli_json("users", "create", "--email", bert_email, "--password",
                                        "correct horse battery " + tag, "--name", "Bert Boekhouder", "--json")["sub"])
    granted = provider.cli_json("access", "grant", "--administration", firm["administration_id"], "--email", bert_email,
                                "--role", "accountant", "--json")
    assert granted == {"status": "granted"}
    mailbox.wait_for_mail(bert_email, match=re.escape(firm_name))

    # The entrepreneur signs up and signs in for the first time through the portal.
    piet = new_context().new_page()
    piet_email = address("Piet")
    sign_up(piet, provider.url, mailbox, company, piet_email)
    person = Person(email=piet_email, password=PASSWORD, name="Piet Jansen",
                    sub=provider.cli_json("accounts", "show", piet_email, "--json")["sub"])
    first_login_after_sign_up(piet, portal.url, provider.url, person)
    assert claimed(piet) == {"#claims": {(company, "owner")}, "#userinfo": {(company, "owner")}}

    # The accountant signs in at the portal: only the firm so far.
    accountant = new_context().new_page()
    first_login(accountant, portal.url, provider.url, mailbox, bert)
    assert all(value == {(firm_name, "accountant")} for value in claimed(accountant).values())

    # The owner gives the accountant access on the administration's access page.
    piet.goto(provider.url + "/account?lang=en")
    row = piet.locator("#administrations tr").filter(has_text=company)
    expect(row).to_contain_text("Trial until")
    with piet.expect_navigation():
        row.locator("a.manage-access").click()
    access_page = piet.url
    piet.locator("#grant-access [name=email]").fill(bert_email)
    piet.locator("#grant-access [name=role]").select_option("accountant")
    with piet.expect_navigation():
        piet.locator("#grant-access button[type=submit]").click()
    expect(piet.locator('[role="status"]')).to_be_visible()
    expect(piet.locator("#members")).to_contain_text(bert_email)
    mail = mailbox.wait_for_mail(bert_email, match=re.escape(company))
    assert "Piet Jansen" in mail.text

    # The accountant sees the client in the firm portal, and in the claim from the next token on.
    accountant.goto(provider.url + "/firm?lang=en")
    expect(accountant.locator("#firm-code")).to_have_text(f"{firm['firm_code'][:4]}-{firm['firm_code'][4:]}")
    expect(accountant.locator("table#clients")).to_contain_text(company)
    expect(accountant.locator("table#clients")).to_contain_text(piet_email)
    accountant.goto(portal.url + "/")
    refresh_at_portal(accountant)
    both = {(firm_name, "accountant"), (company, "accountant")}
    assert claimed(accountant) == {"#claims": both, "#userinfo": both}

    # The owner removes the access: the next refresh no longer carries the administration.
    piet.goto(access_page)
    bert_row = piet.locator("#members tr").filter(has_text=bert_email)
    with piet.expect_navigation():
        bert_row.locator("form.revoke-access button").click()
    expect(piet.locator('[role="status"]')).to_be_visible()
    expect(piet.locator("#members")).not_to_contain_text(bert_email)
    refresh_at_portal(accountant)
    assert all(value == {(firm_name, "accountant")} for value in claimed(accountant).values())
    accountant.goto(provider.url + "/firm?lang=en")
    expect(accountant.locator("table#clients")).to_have_count(0)

