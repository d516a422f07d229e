"""Passkeys in Chromium with a virtual authenticator (Chrome DevTools Protocol, WebAuthn
domain: CTAP2, internal transport, resident keys, user verification): a passkey added in the
security centre signs in from a fresh browser with no password (by its button, and from the
address field's autofill), serves as the second step after the password (a stale copy of it
is refused as a clone), is removed again, and support's 2FA reset removes one; a first
sign-in sets one up instead of the authenticator app.

WebAuthn refuses an IP address as relying-party id, so this module runs its own provider at
``http://localhost:PORT`` (the other e2e tests use ``127.0.0.1``)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from .conftest import running_provider
from .helpers import Person, enter_email_and_password, field, first_login_steps, submit

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def idp(mailbox, tmp_path_factory):
    with running_provider(mailbox, tmp_path_factory.mktemp("idp-localhost"), host="localhost",
                          database_suffix="_e2e_passkeys") as running:
        yield running


@pytest.fixture
def make_person(idp):
    def make(name: str) -> Person:
        address = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery " + uuid.uuid4().hex[:8]
        out = idp.cli_json("users", "create", "--email", address, "--password", password, "--name", name, "--json")
        return Person(email=address, password=password, name=name, sub=out["sub"])

    return make


class VirtualAuthenticator:
    """A platform authenticator of one page, as Chrome's WebAuthn testing domain makes it."""

    def __init__(self, page: Page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def add(self, credential: dict) -> None:
        """The same passkey in another browser (as a security key moves from one to the next)."""
        self.cdp.send("WebAuthn.addCredential", {"authenticatorId": self.id, "credential": credential})

    def clear(self) -> None:
        self.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": self.id})


# A browser whose password manager offers no passkeys in the address field's autofill (no
# conditional requests). Chrome's virtual authenticator answers a conditional request at once
# when it holds a passkey of the site, as a person picking it from the autofill would; pages
# that press a button instead must not have one running.
NO_AUTOFILL = "if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = async () => false;"


def sign_in_page(idp, new_context, *, autofill: bool = True) -> Page:
    """A fresh browser at the e-mail step; with ``autofill`` it has offered passkeys in the
    address field's autofill (a conditional request, whose options are fetched as the page loads)."""
    context = new_context()
    if not autofill:
        context.add_init_script(NO_AUTOFILL)
    page = context.new_page()
    if autofill:
        with page.expect_request(lambda r: r.url.endswith("/passkey-options") and r.method == "POST"):
            page.goto(idp.url + "/account")
    else:
        page.goto(idp.url + "/account")
    expect(field(page, "email")).to_be_visible()
    return page


def at_account(idp):
    return re.compile(re.escape(idp.url) + r"/account$")


def first_sign_in(idp, new_context, mailbox, person: Person) -> tuple[Page, VirtualAuthenticator]:
    """The first sign-in with the authenticator app, in a browser that has a platform authenticator."""
    page = new_context().new_page()
    authenticator = VirtualAuthenticator(page)
    page.goto(idp.url + "/account")
    first_login_steps(page, mailbox, person)
    expect(page.locator("#account-email")).to_have_text(person.email)
    return page, authenticator


def add_passkey(page: Page, idp, name: str) -> None:
    page.goto(idp.url + "/account/security#passkeys")
    page.locator("#passkey-name").fill(name)
    with page.expect_navigation():
        page.locator("button#add-passkey").click()
    expect(page.locator('#passkeys [role="status"]')).to_contain_text("The passkey has been added")
    expect(page.locator("#passkeys [data-passkey-id] h3", has_text=name)).to_be_visible()


def sign_ins(page: Page, idp) -> list[str]:
    page.goto(idp.url + "/account/security#sign-ins")
    return page.locator("#sign-ins tbody tr").all_inner_texts()


def test_add_sign_in_alone_second_step_remove_and_support_reset(idp, new_context, mailbox, make_person):
    person = make_person("Pieter Passkey")
    laptop, authenticator = first_sign_in(idp, new_context, mailbox, person)

    # The security centre adds a passkey: the browser creates it, the mail tells the person.
    add_passkey(laptop, idp, "Laptop")
    assert "A passkey was added" in mailbox.wait_for_mail(person.email, match="passkey").subject
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"

    # A fresh browser with the same passkey signs in with it alone: no password, no code.
    phone = sign_in_page(idp, new_context, autofill=False)
    expect(field(phone, "email")).to_have_attribute("autocomplete", "username webauthn")
    phone_authenticator = VirtualAuthenticator(phone)
    phone_authenticator.add(credential)
    with phone.expect_navigation(url=at_account(idp)):
        phone.locator("button#passkey-signin").click()
    expect(phone.locator("#account-email")).to_have_text(person.email)
    expect(field(phone, "password")).to_have_count(0)
    newest = sign_ins(phone, idp)[0]
    assert "Signed in" in newest and "Passkey" in newest and "Password" not in newest, newest

    # A browser whose password manager holds it offers it in the address field's autofill:
    # picking it there signs in too, without pressing anything.
    [latest] = phone_authenticator.credentials()  # the key as the phone left it (its counter moved)
    tablet = new_context().new_page()
    tablet_authenticator = VirtualAuthenticator(tablet)
    tablet_authenticator.add(latest)
    with tablet.expect_navigation(url=at_account(idp)):
        tablet.goto(idp.url + "/account")
    expect(tablet.locator("#account-email")).to_have_text(person.email)
    [latest] = tablet_authenticator.credentials()

    # In a third browser the passkey is the second step after the password. A copy taken
    # before the others used it reports a counter the provider has seen: a cloned key, refused.
    desk = sign_in_page(idp, new_context)
    submit(desk, email=person.email)
    submit(desk, password=person.password)
    expect(field(desk, "totp_code")).to_be_visible()
    desk_authenticator = VirtualAuthenticator(desk)
    desk_authenticator.add(credential)
    with desk.expect_navigation():
        desk.locator("button#use-passkey").click()
    expect(desk.locator("[role=alert]").first).to_contain_text("That passkey could not be used")
    desk_authenticator.clear()
    desk_authenticator.add(latest)
    with desk.expect_navigation(url=at_account(idp)):
        desk.locator("button#use-passkey").click()
    rows = sign_ins(desk, idp)
    assert "Password + Passkey" in rows[0] and "copied" in "".join(rows), rows

    # Removing it asks first; then it is gone, and a mail says so.
    desk.goto(idp.url + "/account/security#passkeys")
    with desk.expect_navigation():
        desk.locator("#passkeys [data-passkey-id] button[name=remove]").click()
    expect(desk.locator("h1")).to_contain_text("Remove the passkey Laptop?")
    with desk.expect_navigation():
        desk.locator("#confirm-remove button[name=remove]").click()
    expect(desk.locator('#passkeys [role="status"]')).to_contain_text("The passkey has been removed")
    expect(desk.locator("#passkeys [data-passkey-id]")).to_have_count(0)
    assert "A passkey was removed" in mailbox.wait_for_mail(person.email, match="removed").subject

    # A new one, then support resets two-step verification: the passkey no longer signs in.
    add_passkey(desk, idp, "Desk")
    mailbox.wait_for_mail(person.email, match="passkey")
    [credential] = [c for c in desk_authenticator.credentials() if c["credentialId"] != credential["credentialId"]]
    idp.cli("support", "reset-2fa", person.email, "--reason", "lost the laptop")
    mailbox.wait_for_mail(person.email, match="passkeys zijn verwijderd")  # support's mails are Dutch
    other = sign_in_page(idp, new_context, autofill=False)
    VirtualAuthenticator(other).add(credential)
    with other.expect_navigation():
        other.locator("button#passkey-signin").click()
    expect(other.locator('[role="alert"]').first).to_contain_text("That passkey could not be used")


def test_a_first_sign_in_sets_up_a_passkey_instead_of_the_app(idp, new_context, mailbox, make_person):
    person = make_person("Fenna Eerste")
    page = new_context().new_page()
    authenticator = VirtualAuthenticator(page)
    page.goto(idp.url + "/account")
    enter_email_and_password(page, person)
    submit(page, email=person.email)
    submit(page, email_code=mailbox.code_for(person.email))
    expect(page.locator("img#totp-qr")).to_be_visible()  # the app stays the default
    page.locator("#passkey-name").fill("Phone")
    with page.expect_navigation(url=at_account(idp)):
        page.locator("button#enrol-passkey").click()
    expect(page.locator("#two-step")).to_have_text("On, with passkeys")

    # The next sign-in asks the passkey after the password: there is no code to type.
    later = sign_in_page(idp, new_context)
    submit(later, email=person.email)
    submit(later, password=person.password)
    expect(field(later, "totp_code")).to_have_count(0)
    VirtualAuthenticator(later).add(authenticator.credentials()[0])
    with later.expect_navigation(url=at_account(idp)):
        later.locator("button#use-passkey").click()
    expect(later.locator("#account-email")).to_have_text(person.email)
