"""The account's life in a real browser, with real mail read from the SMTP sink:
an invitation accepted and the first sign-in (F2, F3), an accountant inviting a client
from the firm's client management (F1), a forgotten password (F5), two-step
verification set up again (F6), and mail that waits while the relay is down."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import expect

from .helpers import (
    Authenticator,
    Person,
    accept_invitation,
    alert_text,
    at_provider,
    enrol_authenticator,
    enter_email_and_password,
    expect_password_rules,
    expect_signed_in,
    field,
    first_login,
    first_login_steps,
    link_in,
    open_login,
    portal_administrations,
    portal_home,
    submit,
    type_new_password,
)

pytestmark = pytest.mark.e2e

GOOD_PASSWORD = "Zomer-fiets-42-Kaas"
NEW_PASSWORD = "Winter-boot-77-Haring"


def tag() -> str:
    return uuid.uuid4().hex[:8]


def address(first_name: str) -> str:
    return f"{first_name.lower()}-{uuid.uuid4().hex[:10]}@example.com"


def create_firm(provider, name: str) -> str:
    return provider.cli_json("firms", "create", "--name", name, "--json")["administration_id"]


def create_invitation(provider, email: str, administration: str, name: str, *options: str) -> dict:
    return provider.cli_json(
        "invitations", "create", "--email", email, "--administration", administration, "--name", name, *options, "--json"
    )


def sub_of(provider, email: str) -> str:
    return provider.cli_json("accounts", "show", email, "--json")["sub"]


# -- F2 + F3: invitation, acceptance, first sign-in ---------------------------------------


def test_invitation_accepted_then_first_login_at_the_portal(new_context, provider, portal, mailbox):
    firm_name = f"Boekhouders {tag()} BV"
    firm = create_firm(provider, firm_name)
    email, name = address("Piet"), "Piet Jansen"
    administration = f"Bakkerij Jansen {tag()}"
    invitation = create_invitation(provider, email, administration, name, "--firm", firm)

    mail = mailbox.wait_for_mail(email)
    assert firm_name in mail.subject and administration in mail.subject, mail.subject
    url = link_in(mail, provider.url)
    assert url == invitation["invitation_url"]

    page = new_context().new_page()
    accept_invitation(page, url, mailbox, email, GOOD_PASSWORD, weak_password="password1234",
                      contract=(administration, firm_name), mismatch_first=True, open_documents=True)

    # Nothing signed the person in yet: the portal's "Sign in" starts the first login. The
    # invitation confirmed the address with a code: no second code, straight to the authenticator.
    person = Person(email=email, password=GOOD_PASSWORD, name=name, sub=sub_of(provider, email))
    first_login(page, portal.url, provider.url, mailbox, person, email_verified=True)
    assert len(mailbox.all(email)) == 2, [m.subject for m in mailbox.all(email)]  # the invitation, one code

    shown = portal_administrations(page)
    assert shown, "the portal shows no administrations claim"
    for table, administrations in shown.items():
        assert [(a["name"], a["role"]) for a in administrations] == [(administration, "owner")], (table, administrations)


# -- F1: the accountant invites a client ---------------------------------------------------


def test_accountant_invites_a_client_from_client_management(new_context, provider, mailbox):
    firm_name = f"Cijfers {tag()} BV"
    firm = create_firm(provider, firm_name)
    email, name = address("Bea"), "Bea Bakker"
    create_invitation(provider, email, firm, name, "--role", "accountant", "--firm", firm)
    url = link_in(mailbox.wait_for_mail(email), provider.url)

    page = new_context().new_page()
    accept_invitation(page, url, mailbox, email, GOOD_PASSWORD, contract=(firm_name,))

    # From the done page straight into the first sign-in, then to "my details".
    page.locator("a#continue").click()
    page.wait_for_url(at_provider(provider.url))
    expect(field(page, "email")).to_have_value(email)
    person = Person(email=email, password=GOOD_PASSWORD, name=name, sub=sub_of(provider, email))
    first_login_steps(page, mailbox, person, email_verified=True)
    page.wait_for_url(provider.url + "/account")
    expect(page.locator("#account-email")).to_have_text(email)

    client_management = page.locator(f'a[href$="/firms/{firm}/invitations"]')
    expect(client_management).to_contain_text(firm_name)
    client_management.click()
    page.wait_for_url(f"{provider.url}/firms/{firm}/invitations")

    client_email, client_name = address("Karel"), "Karel de Wit"
    client_administration = f"Fietsenmaker De Wit {tag()}"
    form = page.locator("form#invite")
    form.locator("[name=email]").fill(client_email)
    form.locator("[name=name]").fill(client_name)
    form.locator("[name=administration]").fill(client_administration)
    with page.expect_navigation():
        page.locator("#preview-button").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text(client_administration)
    expect(preview).to_contain_text(firm_name)
    expect(preview).to_contain_text(client_name)
    assert mailbox.all(client_email) == [], "the preview sent a mail"
    expect(form.locator("[name=email]")).to_have_value(client_email)

    with page.expect_navigation():
        page.locator("#send").click()
    expect(page.locator('[role="status"]')).to_be_visible()
    row = page.locator("#invitations tbody tr").filter(has_text=client_email)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(client_administration)
    expect(row.locator(".status")).to_have_class(re.compile(r"(^|\s)status-sent(\s|$)"))

    mail = mailbox.wait_for_mail(client_email)
    assert firm_name in mail.subject and client_administration in mail.subject, mail.subject
    assert client_name in mail.text
    # The client's link works in the client's own browser.
    client_page = new_context().new_page()
    client_page.goto(link_in(mail, provider.url))
    expect(client_page.locator("#invitation-email")).to_have_text(client_email)


# -- F5: forgotten password ---------------------------------------------------------------


def test_forgotten_password_through_the_portal(new_context, provider, portal, mailbox, enrolled_person):
    person, first_browser = enrolled_person("Carla Smit")
    old_password = person.password
    first_browser.goto(provider.url + "/account")
    expect(first_browser.locator("#account-email")).to_have_text(person.email)

    page = new_context().new_page()  # another browser: no session at the provider
    open_login(page, portal.url, provider.url)
    submit(page, email=person.email)
    expect(field(page, "password")).to_be_visible()

    with page.expect_navigation():
        page.locator("a#forgot-password").click()
    expect(field(page, "email")).to_have_value(person.email)
    response = submit(page)
    assert response.ok, alert_text(page)
    expect(field(page, "email_code")).to_be_visible()
    response = submit(page, email_code=mailbox.code_for(person.email))
    assert response.ok, alert_text(page)
    expect(field(page, "totp_code")).to_be_visible()
    response = submit(page, totp_code=person.authenticator.code())
    assert response.ok, alert_text(page)

    expect(field(page, "password")).to_be_visible()
    type_new_password(page, NEW_PASSWORD)
    expect_password_rules(page)
    submit(page)
    page.wait_for_url(portal_home(portal.url))
    expect_signed_in(page, person)

    mail = mailbox.wait_for_mail(person.email)
    assert re.search(r"password|wachtwoord", mail.subject, re.I), mail.subject
    assert person.email in mail.text

    # The new password ended the session in the first browser: "my details" asks to sign in.
    first_browser.goto(provider.url + "/account")
    expect(field(first_browser, "email")).to_be_visible()
    expect(first_browser.locator("#account-email")).to_have_count(0)

    # Later, in another browser: the old password is refused, the new one works.
    person.password = NEW_PASSWORD
    later = new_context().new_page()
    open_login(later, portal.url, provider.url)
    submit(later, email=person.email)
    response = submit(later, password=old_password)
    assert 400 <= response.status < 500, f"the old password answered {response.status}"
    expect(later.locator('[role="alert"]')).to_be_visible()
    response = submit(later, password=person.password)
    assert response.ok, alert_text(later)
    expect(field(later, "totp_code")).to_be_visible()
    submit(later, totp_code=person.authenticator.code())
    later.wait_for_url(portal_home(portal.url))
    expect_signed_in(later, person)


# -- F6: two-step verification set up again ------------------------------------------------


def test_reset_two_step_verification(new_context, provider, portal, mailbox, enrolled_person):
    person, _ = enrolled_person("Daan Visser")
    old = person.authenticator
    page = new_context().new_page()
    open_login(page, portal.url, provider.url)
    enter_email_and_password(page, person)
    expect(field(page, "totp_code")).to_be_visible()

    with page.expect_navigation():
        page.locator("a#reset-2fa").click()
    expect(field(page, "email")).to_be_visible()
    response = submit(page, email=person.email)
    assert response.ok, alert_text(page)
    expect(field(page, "email_code")).to_be_visible()
    response = submit(page, email_code=mailbox.code_for(person.email))
    assert response.ok, alert_text(page)

    new = enrol_authenticator(page)
    assert new.secret != old.secret
    submit(page, totp_code=new.code())
    page.wait_for_url(portal_home(portal.url))
    expect_signed_in(page, person)
    person.authenticator = new

    mail = mailbox.wait_for_mail(person.email)
    assert re.search(r"two-step|tweestaps", mail.subject, re.I), mail.subject
    assert person.email in mail.text

    # The next sign-in: the old app's code for a step the provider has not used yet is
    # refused, the new app's code for that same step is accepted.
    later = new_context().new_page()
    open_login(later, portal.url, provider.url)
    enter_email_and_password(later, person)
    expect(field(later, "totp_code")).to_be_visible()
    stale = Authenticator(old.secret)
    stale.last_step = new.last_step
    old_code = stale.code()
    assert old_code != new.code_at(stale.last_step)  # (one in a million)
    response = submit(later, totp_code=old_code)
    assert 400 <= response.status < 500, f"the old authenticator's code answered {response.status}"
    expect(later.locator('[role="alert"]')).to_be_visible()
    expect(field(later, "totp_code")).to_be_visible()
    submit(later, totp_code=new.code())
    later.wait_for_url(portal_home(portal.url))
    expect_signed_in(later, person)


# -- mail while the relay is down --------------------------------------------------------


def _outbox_queued(provider) -> float:
    """The provider's count of mail still queued (its /metrics gauge, open to loopback)."""
    metrics = requests.get(provider.url + "/metrics", timeout=10).text
    return float(re.search(r"^idp_outbox_queued (\S+)$", metrics, re.M).group(1))


def test_mail_queued_while_the_relay_is_down_arrives_after_it_returns(provider, mailbox):
    """Several mails queued one after another while the relay is down, each tried and failed by
    the delivery loop: once it is back, each arrives exactly once (in no promised order: a mail
    that failed more often waits longer for its retry)."""
    emails = [address(name) for name in ("Rik", "Sanne", "Tom")]
    invitations = {}
    mailbox.stop_relay()
    try:
        for email in emails:
            since = provider.log_size()
            invitations[email] = create_invitation(provider, email, f"Relais {tag()}", email.split("-")[0])
            # The delivery loop has tried the relay, failed, and planned a retry.
            failure = provider.wait_for_log(email, since=since, timeout=10)
            assert "retry" in failure, failure
    finally:
        mailbox.start_relay()

    # The retries (5 s after a failure, then 10, 20, ...) deliver them.
    for email in emails:
        mail = mailbox.wait_for_mail(email, timeout=30)
        assert invitations[email]["invitation_url"] in mail.text
    deadline = time.monotonic() + 30
    while _outbox_queued(provider):  # nothing left that a later round could send again
        assert time.monotonic() < deadline, "mail still queued after the relay returned"
        time.sleep(0.5)
    assert {email: len(mailbox.all(email)) for email in emails} == dict.fromkeys(emails, 1)
