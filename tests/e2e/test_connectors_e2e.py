"""Connector users (F7) in a real browser, with real mail read from the SMTP sink: the
owner requests a password from the account page through the portal with its CAPTCHA,
sets it from the mailed link on another device, and an external application then gets
tokens with the password grant. A second request within 24 hours gets the one generic
answer until support releases the limit."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
import requests
from playwright.sync_api import Page, Response, expect

from .helpers import (
    SUBMIT,
    Person,
    accept_invitation,
    alert_text,
    expect_password_rules,
    field,
    first_login,
    link_in,
    portal_administrations,
    submit,
    type_new_password,
)

pytestmark = pytest.mark.e2e

OWNER_PASSWORD = "Zomer-fiets-42-Kaas"
CONNECTOR_PASSWORD = "Bank-koppeling-99-Zon"
CONNECTOR_DOMAIN = "connect.example"  # the provider's default CONNECTOR_DOMAIN
CAPTCHA_TIMEOUT_MS = 30_000
RESET_LINK = r"/connector-password/[\w-]{20,}"


@dataclass
class Owner:
    person: Person
    page: Page  # signed in at the provider (and at the portal)
    administration: str  # id
    administration_name: str
    username: str  # the connector user


@pytest.fixture
def owner(new_context, provider, portal, mailbox) -> Owner:
    """A client who accepted an invitation in the browser and signed in for the first
    time: the owner of a new administration, which has a connector user."""
    email = f"olga-{uuid.uuid4().hex[:10]}@example.com"
    name = "Olga Mulder"
    administration_name = f"Drukkerij Mulder {uuid.uuid4().hex[:8]}"
    provider.cli_json("invitations", "create", "--email", email, "--administration", administration_name,
                      "--name", name, "--json")
    url = link_in(mailbox.wait_for_mail(email), provider.url)

    page = new_context().new_page()
    accept_invitation(page, url, mailbox, email, OWNER_PASSWORD, contract=(administration_name,))
    sub = provider.cli_json("accounts", "show", email, "--json")["sub"]
    person = Person(email=email, password=OWNER_PASSWORD, name=name, sub=sub)
    first_login(page, portal.url, provider.url, mailbox, person, email_verified=True)

    administrations = portal_administrations(page).get("#claims")
    assert administrations, "the portal shows no administrations claim"
    (administration,) = [a for a in administrations if a["name"] == administration_name]
    assert administration["role"] == "owner", administration
    username = provider.cli_json("connectors", "show", "--administration", administration["id"], "--json")["username"]
    assert re.fullmatch(r"[A-Z0-9]{4,40}", username), username
    return Owner(person=person, page=page, administration=administration["id"],
                 administration_name=administration_name, username=username)


def endpoints(provider) -> dict:
    response = requests.get(provider.url + "/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return response.json()


def open_portal_from_account_page(page: Page, provider_url: str, username: str) -> None:
    """"My details" shows the connector user; its "Request" link opens the reset portal."""
    page.goto(provider_url + "/account")
    block = page.locator("section.connector").filter(has=page.locator(".connector-username", has_text=username))
    expect(block).to_have_count(1)
    expect(block.locator(".connector-username")).to_have_text(username)
    with page.expect_navigation():
        block.locator("a#request-connector-password").click()
    expect(field(page, "username")).to_be_visible()


def request_connector_password(page: Page, typed: str, again: str | None = None) -> Response:
    """On the portal's first step: the username, the CAPTCHA (the button is disabled until
    the browser has solved it), Next; then the username once more, Next. Returns the
    response to the second step (or to the first, when that one was refused)."""
    button = page.locator(SUBMIT)
    field(page, "username").fill(typed)
    expect(button).to_be_disabled()
    page.locator("#captcha").click()
    expect(button).to_be_enabled(timeout=CAPTCHA_TIMEOUT_MS)
    response = submit(page)
    if not response.ok:
        return response
    expect(field(page, "username")).to_be_visible()
    expect(field(page, "username")).to_have_value("")
    expect(page.locator("#captcha")).to_have_count(0)
    return submit(page, username=typed if again is None else again)


def password_grant(token_endpoint: str, client: dict, username: str, password: str) -> requests.Response:
    return requests.post(
        token_endpoint,
        data={"grant_type": "password", "username": username, "password": password},
        auth=(client["client_id"], client["client_secret"]),
        timeout=15,
    )


def test_owner_sets_the_connector_password_and_the_bank_gets_tokens(new_context, provider, mailbox, owner):
    page = owner.page
    open_portal_from_account_page(page, provider.url, owner.username)

    response = request_connector_password(page, f"{owner.username}@{CONNECTOR_DOMAIN}")
    assert response.ok, f"the portal answered {response.status}: {alert_text(page)}"
    expect(page.locator("#sent")).to_be_visible()
    expect(page.locator('[role="alert"]')).to_have_count(0)

    mail = mailbox.wait_for_mail(owner.person.email, match=RESET_LINK)
    assert owner.username in mail.subject, mail.subject
    assert owner.administration_name in mail.text
    link = link_in(mail, provider.url)

    # The owner opens the link elsewhere, say on a phone: no session needed.
    phone = new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    response = phone.goto(link)
    assert response is not None and response.ok, f"the link answered {response and response.status}"
    expect(phone.locator("h1")).to_contain_text(owner.username)
    type_new_password(phone, CONNECTOR_PASSWORD)
    expect_password_rules(phone)
    response = submit(phone)
    assert response.ok, f"saving the password answered {response.status}: {alert_text(phone)}"
    expect(phone.locator("#done")).to_contain_text(owner.username)

    confirmation = mailbox.wait_for_mail(owner.person.email, match=re.escape(owner.username))
    assert re.search(RESET_LINK, confirmation.text) is None, "the confirmation carries a reset link"
    assert owner.username in confirmation.text and owner.administration_name in confirmation.text

    # The link worked once.
    again = phone.goto(link)
    assert again is not None and again.status == 410, f"the used link answered {again and again.status}"

    # Outside the browser: a bank registered for the password grant exchanges the bare
    # username and the password for a token.
    bank = provider.cli_json("clients", "create", "--name", "Bank", "--grant-type", "password", "--json")
    config = endpoints(provider)
    response = password_grant(config["token_endpoint"], bank, owner.username, CONNECTOR_PASSWORD)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"].lower() == "bearer" and tokens["access_token"]
    assert "id_token" not in tokens and "refresh_token" not in tokens, sorted(tokens)

    info = requests.post(
        config["introspection_endpoint"],
        data={"token": tokens["access_token"]},
        auth=(bank["client_id"], bank["client_secret"]),
        timeout=15,
    )
    assert info.status_code == 200, info.text
    claims = info.json()
    assert claims["active"] is True, claims
    assert claims["sub"] == owner.username, claims
    assert claims["administration"] == owner.administration, claims

    # The username with its domain suffix is not what the grant takes.
    suffixed = password_grant(config["token_endpoint"], bank, f"{owner.username}@{CONNECTOR_DOMAIN}",
                              CONNECTOR_PASSWORD)
    assert suffixed.status_code == 400 and suffixed.json()["error"] == "invalid_grant", suffixed.text

    # "My details" now shows the day the password was set.
    page.goto(provider.url + "/account")
    expect(page.locator("section.connector")).to_contain_text(re.compile(r"\d{1,2} \w{3}\.? \d{4}"))  # "5 Dec 2026"


def test_second_request_within_a_day_gets_the_generic_answer_until_support_releases(
    new_context, provider, mailbox, owner
):
    page = owner.page
    open_portal_from_account_page(page, provider.url, owner.username)
    response = request_connector_password(page, owner.username)
    assert response.ok, f"the first request answered {response.status}: {alert_text(page)}"
    expect(page.locator("#sent")).to_be_visible()
    first_link = link_in(mailbox.wait_for_mail(owner.person.email, match=RESET_LINK), provider.url)

    # The same username again, within 24 hours.
    open_portal_from_account_page(page, provider.url, owner.username)
    throttled = request_connector_password(page, f"{owner.username}@{CONNECTOR_DOMAIN}")
    expect(page.locator('[role="alert"]')).to_be_visible()
    expect(page.locator("#sent")).to_have_count(0)
    throttled_answer = (throttled.status, page.locator('[role="alert"]').inner_text().strip())

    # An unknown username, in a browser nobody signed in with.
    stranger = new_context().new_page()
    stranger.goto(provider.url + "/connector-password")
    unknown_name = "U" + uuid.uuid4().hex[:9].upper()
    unknown = request_connector_password(stranger, unknown_name)
    expect(stranger.locator('[role="alert"]')).to_be_visible()
    unknown_answer = (unknown.status, stranger.locator('[role="alert"]').inner_text().strip())

    assert throttled_answer == unknown_answer, (throttled_answer, unknown_answer)
    status, text = throttled_answer
    assert 400 <= status < 500, throttled_answer
    assert "24" in text, text  # the message lists the 24-hour limit among the possible causes

    # Support releases the limit; the next request gets through.
    provider.cli("support", "release-reset-throttle", owner.username, "--reason", "Owner called about the bank link")
    open_portal_from_account_page(page, provider.url, owner.username)
    response = request_connector_password(page, owner.username.lower())
    assert response.ok, f"the request after the release answered {response.status}: {alert_text(page)}"
    expect(page.locator("#sent")).to_be_visible()
    second_link = link_in(mailbox.wait_for_mail(owner.person.email, match=RESET_LINK), provider.url)
    assert second_link != first_link

    # Only the two requests that got through mailed the owner (mail leaves in order).
    resets = [m for m in mailbox.all(owner.person.email) if re.search(RESET_LINK, m.text)]
    assert len(resets) == 2, [m.subject for m in resets]

    release = [e for e in provider.cli_json("audit", "list", "--limit", "100", "--json")
               if e["action"] == "support.release_reset_throttle" and e["subject"] == owner.username]
    assert release and release[0]["reason"] == "Owner called about the bank link", release
