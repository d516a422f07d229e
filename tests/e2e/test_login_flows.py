"""Sign-in through the demo portal in a real browser, with real mail (F3, F4)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .helpers import (
    SUBMIT,
    alert_text,
    at_provider,
    field,
    first_login,
    login,
    open_login,
    portal_home,
    submit,
)

pytestmark = pytest.mark.e2e

# The proof of work takes about a second in a browser; a busy machine may take longer.
CAPTCHA_TIMEOUT_MS = 30_000



def test_first_login_verifies_email_and_enrols_the_authenticator(
    new_context, provider, portal, mailbox, make_person, docs_dir
):
    person = make_person("Anna de Vries")
    page = new_context(viewport={"width": 1000, "height": 800}).new_page()

    authenticator = first_login(page, portal.url, provider.url, mailbox, person, screenshot=docs_dir / "login.png")

    assert (docs_dir / "login.png").stat().st_size > 0
    assert authenticator.last_step is not None
    claims = page.locator("#claims")
    expect(claims).to_contain_text(provider.url)  # iss
    expect(claims).to_contain_text(portal.client_id)  # aud


def test_later_login_asks_for_the_authenticator_code(new_context, provider, portal, enrolled_person):
    person, _ = enrolled_person("Chris Bakker")
    page = new_context().new_page()  # another browser: no session at the provider

    login(page, portal.url, provider.url, person)

    expect(page.locator("#whoami")).to_contain_text(person.email)


def test_wrong_password_keeps_the_password_step(new_context, provider, portal, make_person):
    person = make_person("Dirk Visser")
    page = new_context().new_page()
    open_login(page, portal.url, provider.url)
    submit(page, email=person.email)
    expect(field(page, "password")).to_be_visible()
    password_url = page.url

    response = submit(page, password=person.password + "x")
    assert 400 <= response.status < 500, f"a wrong password answered {response.status}"
    expect(page.locator('[role="alert"]')).to_be_visible()
    expect(field(page, "password")).to_be_visible()
    expect(field(page, "password")).to_have_value("")
    assert page.url == password_url

    # The right password still works after a wrong one (a first login goes on to
    # verify the e-mail address).
    response = submit(page, password=person.password)
    assert response.ok, alert_text(page)
    expect(field(page, "password")).to_have_count(0)
    expect(field(page, "email")).to_be_visible()


def test_wrong_authenticator_code_keeps_the_step(new_context, provider, portal, enrolled_person):
    person, _ = enrolled_person("Daan Peters")
    page = new_context().new_page()
    open_login(page, portal.url, provider.url)
    submit(page, email=person.email)
    response = submit(page, password=person.password)
    assert response.ok, alert_text(page)
    expect(field(page, "totp_code")).to_be_visible()
    totp_url = page.url

    response = submit(page, totp_code=person.authenticator.wrong_code())
    assert 400 <= response.status < 500, f"a wrong authenticator code answered {response.status}"
    expect(page.locator('[role="alert"]')).to_be_visible()
    expect(field(page, "totp_code")).to_be_visible()
    expect(field(page, "password")).to_have_count(0)
    assert page.url == totp_url

    # The right code still works after a wrong one.
    submit(page, totp_code=person.authenticator.code())
    page.wait_for_url(portal_home(portal.url))
    expect(page.locator("#whoami")).to_contain_text(person.email)


def test_logout_at_the_provider_ends_the_single_sign_on(provider, portal, enrolled_person):
    person, page = enrolled_person("Eva Smit")
    expect(page.locator("#whoami")).to_be_visible()

    # An error page of the provider leads back to the app the person came from.
    page.goto(provider.url + "/no-such-page")
    back = page.locator("a#back")
    expect(back).to_have_text("Back to Portal")
    with page.expect_navigation(url=portal_home(portal.url)):
        back.click()
    expect(page.locator("#whoami")).to_be_visible()

    # A sign-out request without the session's ID token asks first; Cancel goes back, still signed in.
    page.goto(f"{provider.url}/logout?client_id={portal.client_id}")
    expect(page.locator("form#step")).to_be_visible()
    with page.expect_navigation(url=portal_home(portal.url)):
        page.locator("a#cancel").click()
    expect(page.locator("#whoami")).to_be_visible()

    # The portal sends the ID token of this session along: no question, straight back.
    with page.expect_navigation(url=portal_home(portal.url)):
        page.locator("form#logout button").click()
    expect(page.locator("#signed-out")).to_be_visible()
    expect(page.locator("#whoami")).to_have_count(0)

    # Signing in again starts at the e-mail step: the provider's session is gone.
    open_login(page, portal.url, provider.url)
    assert page.url.startswith(provider.url + "/")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("de-DE", "nl"),  # no language the provider offers: the default
        ("nl-NL", "nl"),
        ("en-US", "en"),  # Accept-Language
    ],
)
def test_language_of_the_email_step(new_context, provider, portal, locale, expected):
    page = new_context(locale=locale).new_page()
    page.goto(portal.url + "/login")
    page.wait_for_url(at_provider(provider.url))
    expect(field(page, "email")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", expected)


def test_lang_parameter_switches_to_english(new_context, provider, portal, make_person):
    person = make_person("Femke Mulder")
    page = new_context(locale="de-DE").new_page()
    page.goto(portal.url + "/login")
    page.wait_for_url(at_provider(provider.url))
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator(".for-app")).to_have_text("Meld je aan om verder te gaan naar Boekhoudportaal")  # its Dutch name

    separator = "&" if "?" in page.url else "?"
    page.goto(page.url + separator + "lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(field(page, "email")).to_be_visible()
    expect(page.locator(".for-app")).to_have_text("Sign in to continue to Portal")

    # The choice holds for the next step.
    submit(page, email=person.email)
    expect(field(page, "password")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_mobile_layout_has_no_horizontal_scrolling(new_context, provider, portal, make_person):
    person = make_person("Gijs van den Berg-Oosterhuis")
    context = new_context(
        viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True, device_scale_factor=2, locale="nl-NL"
    )
    page = context.new_page()
    page.goto(portal.url + "/login")
    page.wait_for_url(at_provider(provider.url))
    expect(field(page, "email")).to_be_visible()
    assert page.evaluate("window.innerWidth") == 375
    width = _horizontal_overflow(page)
    assert width <= 375, f"the e-mail step is {width}px wide at a 375px viewport"

    # The password step with an error message fits too.
    submit(page, email=person.email)
    submit(page, password="not the password")
    expect(page.locator('[role="alert"]')).to_be_visible()
    width = _horizontal_overflow(page)
    assert width <= 375, f"the password step with an error is {width}px wide at a 375px viewport"



class ExtraVisibleInput(AssertionError):
    pass


def test_password_step_shows_one_input(new_context, provider, portal, make_person):
    """The password step shows the address as text and one field to type in: the
    password. (A copy of the address for password managers stays invisible.)"""
    person = make_person("Ilse Hendriks")
    page = new_context().new_page()
    open_login(page, portal.url, provider.url)
    submit(page, email=person.email)
    expect(field(page, "password")).to_be_visible()
    visible = page.locator("#step input:visible")
    names = [visible.nth(i).get_attribute("name") for i in range(visible.count())]
    if names != ["password"]:
        raise ExtraVisibleInput(f"visible inputs on the password step: {names}")


def test_after_wrong_passwords_the_password_step_asks_for_the_captcha(new_context, provider, portal, make_person):
    """Smart lockout in a real browser: after three wrong passwords the step shows the
    proof-of-work check; the button waits for it, and the right password then goes through."""
    person = make_person("Eva Smit")
    page = new_context().new_page()
    open_login(page, portal.url, provider.url)
    submit(page, email=person.email)
    for _ in range(3):
        expect(page.locator("#captcha")).to_have_count(0)
        response = submit(page, password=person.password + "x")
        assert response.status == 401, alert_text(page)
    button = page.locator(SUBMIT)
    expect(page.locator("#captcha")).to_be_visible()
    expect(button).to_be_disabled()
    field(page, "password").fill(person.password)
    page.locator("#captcha").click()
    expect(button).to_be_enabled(timeout=CAPTCHA_TIMEOUT_MS)
    response = submit(page)
    assert response.ok, alert_text(page)
    expect(field(page, "password")).to_have_count(0)
    expect(field(page, "email")).to_be_visible()  # a first login verifies the address next
