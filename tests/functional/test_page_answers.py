"""What the pages and mails say where a browser adds nothing: times in the person's own time
zone, the way back to the app, the app's name in the page's language, the documents behind the
terms checkboxes, each mail per purpose, the enrolment page's ways to add the key."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from idp import clock
from idp.services import mailer
from tests.helpers import T0, accept_until, code_from_mail, invite, last_mail, make_client, signed_in_browser

AT = dt.datetime(2026, 11, 23, 14, 5)  # UTC: 15:05 in Amsterdam, 09:05 in New York


def test_times_in_the_browsers_zone_else_the_providers_named(app, browser, portal, person):
    signed_in_browser(browser, portal, person)  # signed in at T0, 09:00 UTC
    browser.get("/account")
    assert browser.page.ids["signed-in-since"] == "23 nov 2026 10:00 (Midden-Europese standaardtijd)"
    browser.http.set_cookie("idp_tz", "America/New_York")
    browser.get("/account")
    assert browser.page.ids["signed-in-since"] == "23 nov 2026 04:00"  # the person's own clock: no name
    for nonsense in ("Mars/Olympus_Mons", "../../etc/passwd", "Europe/Amsterdam\\x00", "x" * 300):
        browser.http.set_cookie("idp_tz", nonsense)
        browser.get("/account")
        assert browser.page.ids["signed-in-since"].endswith("(Midden-Europese standaardtijd)"), nonsense


def test_times_in_mail_are_the_providers_named_whatever_the_browser(app):
    with app.test_request_context("/", headers={"Cookie": "idp_tz=America/New_York"}):
        _, text, _ = mailer.render("password_changed", "en", name="Anna", email="anna@example.com", when=AT)
    assert "23 Nov 2026 15:05 (Central European Standard Time)" in text and "UTC" not in text


def test_the_way_back_from_an_error_page_leads_to_the_app_one_came_from(app, browser, portal):
    browser.get("/no-such-page")
    assert browser.status == 404 and browser.page.links["back"] == "/"  # no app known: the start page
    browser.authorize(portal["client_id"])
    browser.get("/no-such-page")
    assert browser.status == 404
    assert browser.page.links["back"] == "http://app.test/"  # the site of its redirect URI
    assert "Terug naar Bookkeeping portal" in browser.text
    # An expired sign-in says so, and leads back to the app too.
    browser.authorize(portal["client_id"])
    clock.freeze(clock.now() + dt.timedelta(hours=1))
    browser.submit(email="anna@example.com")
    assert browser.status == 410 and browser.page.links["back"] == "http://app.test/"


def test_the_apps_name_in_the_pages_language_and_its_home(app, browser, cli):
    client = make_client(app, name="Bookkeeping portal", extra=["--localized-name", "nl=Boekhoudportaal",
                                                                "--client-uri", "https://portal.example/start"])
    browser.authorize(client["client_id"])
    assert "verder te gaan naar Boekhoudportaal" in browser.text
    browser.get(browser.url + ("&" if "?" in browser.url else "?") + "lang=en")
    assert "continue to Bookkeeping portal" in browser.text
    browser.get("/no-such-page")
    assert browser.page.links["back"] == "https://portal.example/start"
    for wrong in ("nl", "=Naam", "nederlands=Naam", "nl=" + "x" * 201):
        result = cli.invoke(args=["clients", "create", "--name", "X", "--redirect-uri", "https://x.example/cb",
                                  "--localized-name", wrong])
        assert result.exit_code != 0 and "--localized-name" in result.output, wrong


@pytest.mark.config(TERMS_URL="https://suite.example/voorwaarden")
def test_the_terms_checkboxes_link_to_the_documents(app, browser, cli):
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")
    assert browser.page.links["terms-link"] == "https://suite.example/voorwaarden"  # configured
    assert browser.page.links["privacy-link"] == "/privacy"  # the provider's own
    contract = browser.url
    browser.get("/privacy")
    assert browser.status == 200 and "Argon2id" in browser.text
    browser.get("/terms")
    assert browser.status == 200 and "Algemene voorwaarden" in browser.text
    browser.get(contract)
    browser.submit(accept_terms="yes")  # one box only
    assert browser.status == 400 and browser.alert


def mail_text(app, kind, locale="en", **context) -> str:
    with app.app_context():
        return mailer.render(kind, locale, **context)[1]


CODE = {"code": "123456", "minutes": 10, "name": "Anna", "email": "anna@example.com"}


def test_each_code_mail_says_what_happened_and_what_to_do(app):
    first = mail_text(app, "email_code", purpose="verify_email", **CODE)
    assert "for the first time" in first and "someone else knows your password" in first
    reset = mail_text(app, "email_code", purpose="reset_password", **CODE)
    assert "new password was asked" in reset and "ignore this mail: your password stays as it is" in reset
    assert "knows your password" not in reset  # anyone can ask for a reset of any address
    again = mail_text(app, "email_code", purpose="reset_2fa", **CODE)
    assert "two-step verification again" in again and "someone else knows your password" in again
    invited = mail_text(app, "email_code", purpose="invitation", **CODE)
    assert "accepting an invitation" in invited and "password" not in invited
    for text in (first, reset, again, invited):
        assert re.search(r"^    123456$", text, re.M) and "10 minutes" in text


def test_a_lock_after_wrong_authenticator_codes_does_not_talk_about_the_password(app):
    codes = mail_text(app, "account_locked", cause="totp", until=AT, **CODE)
    assert "wrong codes from an authenticator app" in codes and "password" not in codes.lower()
    assert "15:05 (Central European Standard Time)" in codes
    current = mail_text(app, "account_locked", cause="password", until=None, **CODE)
    assert "current password" in current and "until support unlocks" in current


def test_an_invitation_to_an_existing_account_says_sign_in_to_accept(app, cli, person):
    invite(cli, person["email"], "Tweede Zaak")
    existing = last_mail(app, person["email"]).text
    assert "sign in to accept" in existing.lower() or "meld je aan om de uitnodiging te accepteren" in existing
    assert "account aan te maken" not in existing and "create your account" not in existing
    invite(cli, "nieuw@example.com", "Derde Zaak")
    new = last_mail(app, "nieuw@example.com").text
    assert "je account aan te maken" in new


def test_enrolment_offers_the_key_to_open_in_the_app_and_to_copy(app, browser, portal, person):
    clock.freeze(T0)
    browser.authorize(portal["client_id"])
    browser.submit(email=person["email"])
    browser.submit(password=person["password"])
    browser.submit(email=person["email"])
    browser.submit(email_code=code_from_mail(app, person["email"]))
    assert browser.step_state == "totp_enroll"
    secret = browser.page.ids["totp-secret"].replace(" ", "").strip()
    link = browser.page.links["totp-open"]
    assert link.startswith("otpauth://totp/") and f"secret={secret}" in link
    assert re.search(rf'<button type="button" id="copy-totp-secret"[^>]*data-copy="{secret}"', browser.text)
    assert 'src="/static/copy.js"' in browser.text  # the page's own script (no inline script: the CSP)
    assert "autofocus" not in browser.text  # a phone keeps the key and the link in view


def test_the_forgotten_password_resend_says_when_alike_for_every_address(app, browser, portal, person):
    clock.freeze(T0)
    answers = []
    for email in (person["email"], "nobody@example.com"):
        browser.forget()
        browser.authorize(portal["client_id"])
        browser.submit(email=email)
        browser.get(re.search(r'id="forgot-password" href="([^"]+)"', browser.text).group(1))
        browser.submit(email=email)
        assert browser.step_state == "forgot_code"
        clock.advance(seconds=10)
        browser.action("resend")
        answers.append((browser.status, browser.alert))
    assert answers[0] == answers[1] and answers[0][0] == 429 and "over 20 seconden" in answers[0][1].lower()
