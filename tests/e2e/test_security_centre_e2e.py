"""The security centre in a real browser: one person signed in to the portal in two
browsers withdraws the portal's access from the first (the refresh token the portal holds
in the second stops working), ends the second browser's session (it is signed out) and
sees the sign-ins listed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .helpers import field, login

pytestmark = pytest.mark.e2e


def refresh_at_portal(page, portal_url: str) -> None:
    page.goto(portal_url + "/")
    with page.expect_navigation():
        page.locator("#refresh button[type=submit]").click()


def test_withdraw_an_app_end_the_other_session_and_see_the_sign_ins(provider, portal, new_context, enrolled_person):
    person, laptop = enrolled_person("Sanne Visser")
    phone = new_context(user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                                   "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1").new_page()
    login(phone, portal.url, provider.url, person)

    # The phone's sign-in is the portal's one connection now (one connection per app per login).
    refresh_at_portal(phone, portal.url)
    expect(phone.locator("#refresh-result")).to_be_visible()

    # The account page leads to the security centre: both browsers' sessions, this one marked.
    laptop.goto(provider.url + "/account")
    laptop.locator("a#security-centre").click()
    sessions = laptop.locator("#sessions [data-session]")
    expect(sessions).to_have_count(2)
    expect(laptop.locator("#sessions [data-current]")).to_have_count(1)
    expect(sessions.filter(has_text="iOS 17.1")).to_have_count(1)

    # Withdraw the portal's access: the confirmation is in view, and its refresh token no longer works.
    app = laptop.locator(f'#apps [data-client-id="{portal.client_id}"]')
    expect(app).to_contain_text("Portal")
    app.locator("button[name=revoke]").click()
    confirmation = laptop.locator('#apps [role="status"]')
    expect(confirmation).to_be_in_viewport()
    expect(laptop.locator(f'#apps [data-client-id="{portal.client_id}"]')).to_have_count(0)
    refresh_at_portal(phone, portal.url)
    expect(phone.locator("#refresh-error")).to_contain_text("invalid_grant")

    # End the phone's session from the laptop.
    laptop.goto(provider.url + "/account/security")
    laptop.locator("#sessions [data-session]:not([data-current]) button[name=end]").click()
    expect(laptop.locator('#sessions [role="status"]')).to_be_in_viewport()
    expect(laptop.locator("#sessions [data-session]")).to_have_count(1)
    phone.goto(provider.url + "/account")
    expect(field(phone, "email")).to_be_visible()  # signed out: it asks to sign in

    # The sign-ins of both browsers, in words.
    rows = laptop.locator("#sign-ins tbody tr")
    expect(rows.filter(has_text="Signed in")).to_have_count(2)
    expect(rows.filter(has_text="Password + Authenticator app").first).to_be_visible()
    expect(rows.filter(has_text="Access of an application withdrawn")).to_have_count(1)
    expect(rows.filter(has_text="Session ended in the security centre")).to_have_count(1)
