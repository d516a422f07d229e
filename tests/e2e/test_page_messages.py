"""What the sign-in and account pages say, as a person sees it in a real browser: enrolment on
a phone (the key opens in the app or is copied), messages that say what to do and until when
(in the browser's own time zone), and the account page's answers to a change."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .helpers import (
    alert_text,
    enrol_authenticator,
    enter_email_and_password,
    field,
    open_login,
    portal_home,
    submit,
)

pytestmark = pytest.mark.e2e

LOCKOUT_AFTER_FAILURES = 5  # IDP_LOCKOUT_AFTER_FAILURES, the default
LOCKOUT_MINUTES = 15  # IDP_LOCKOUT_DURATION, the default


def clock_times(zone: str, minutes_from_now: int) -> set[str]:
    """HH:MM in ``zone`` of now plus ``minutes_from_now``, allowing for a minute passing."""
    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes_from_now)
    return {(now + dt.timedelta(minutes=d)).astimezone(ZoneInfo(zone)).strftime("%H:%M") for d in (-1, 0, 1)}


def test_first_sign_in_on_a_phone_then_codes_used_twice_and_a_lock_in_the_persons_time(
        new_context, provider, portal, mailbox, make_person):
    person = make_person("Noor Jansen")
    context = new_context(timezone_id="America/New_York", permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    open_login(page, portal.url, provider.url)
    enter_email_and_password(page, person)

    # The address is confirmed with a mailed code; asking for another at once says how long to wait.
    expect(field(page, "email")).to_be_visible()
    submit(page, email=person.email)
    expect(field(page, "email_code")).to_be_visible()
    with page.expect_navigation() as answer:
        page.locator("button#resend").click()
    assert answer.value.status == 429
    wait = re.search(r"new code in (\d+) seconds?", alert_text(page))
    assert wait and 1 <= int(wait.group(1)) <= 30, alert_text(page)
    response = submit(page, email_code=mailbox.code_for(person.email))
    assert response.ok, alert_text(page)

    # On a phone: the key opens in the authenticator app, or is copied, in blocks of four as shown.
    authenticator = enrol_authenticator(page)
    shown = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"([A-Z2-7]{4} )*[A-Z2-7]{1,4}", shown.strip()), shown
    open_in_app = page.locator('a[href^="otpauth://"]')
    expect(open_in_app).to_be_visible()
    href = open_in_app.get_attribute("href")
    assert f"secret={authenticator.secret}" in href and "issuer=" in href, href
    page.locator("#copy-totp-secret").click()
    expect(page.locator("#copy-status")).to_contain_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == authenticator.secret
    submit(page, totp_code=authenticator.code())
    page.wait_for_url(portal_home(portal.url))
    person.authenticator = authenticator

    # Another browser, same zone: the code just used is refused as used, with what to do.
    later = new_context(timezone_id="America/New_York").new_page()
    open_login(later, portal.url, provider.url)
    enter_email_and_password(later, person)
    response = submit(later, totp_code=authenticator.code_at(authenticator.last_step))
    assert response.status == 400
    expect(later.locator('[role="alert"]')).to_contain_text("wait for the next code in your app", ignore_case=True)

    # Wrong codes lock the account; the page says until when, on the person's own clock.
    for _ in range(LOCKOUT_AFTER_FAILURES - 2):
        assert submit(later, totp_code=authenticator.wrong_code()).status == 400
    response = submit(later, totp_code=authenticator.wrong_code())
    assert response.status == 423, alert_text(later)
    text = alert_text(later)
    until = re.search(r"until (\d{1,2} \w{3} \d{4} (\d\d:\d\d))", text)
    assert until and until.group(2) in clock_times("America/New_York", LOCKOUT_MINUTES), text
    assert "UTC" not in text


def test_the_account_page_opens_at_the_top_and_answers_each_change_in_view(provider, enrolled_person, mailbox):
    person, page = enrolled_person("Ravi Kumar", timezone_id="Asia/Kolkata")
    page.goto(provider.url + "/account")
    expect(page.locator("#account-email")).to_have_text(person.email)
    # At the top, nothing focused far down the page.
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.activeElement === document.body")
    # Times on the person's own clock (India: half an hour off every other zone's minutes).
    since = page.locator("#signed-in-since").inner_text()
    assert any(t in since for t in clock_times("Asia/Kolkata", 0)) and "UTC" not in since, since

    form = page.locator("form#password-form")
    code = person.authenticator.code()  # refused changes do not use it up

    def change(current: str, new: str, confirmation: str | None = None) -> int:
        form.locator("[name=current_password]").fill(current)
        form.locator("[name=password]").fill(new)
        form.locator("[name=password_confirm]").fill(new if confirmation is None else confirmation)
        form.locator("[name=totp_code]").fill(code)
        with page.expect_navigation() as answer:
            form.locator("button[type=submit]").click()
        return answer.value.status

    new_password = "Moesson-thee-31-Lamp"
    assert change("not my password", new_password) == 401
    alert = page.locator('[role="alert"]')
    expect(alert).to_contain_text("current password is not correct")
    expect(alert).to_be_in_viewport()

    assert change(person.password, person.password) == 400
    expect(alert.locator(".problems li")).to_have_text(["This is your current password: choose a new one."])
    expect(alert).to_be_in_viewport()

    assert change(person.password, new_password, new_password + "?") == 400
    expect(alert.locator(".problems li")).to_have_text(["The passwords are not the same."])
    expect(page.locator("#password-rules li[data-rule=confirmed]")).to_have_class(re.compile(r"(^|\s)bad(\s|$)"))
    expect(page.locator("#password-rules li[data-rule=length]")).to_have_class(re.compile(r"(^|\s)ok(\s|$)"))

    assert change(person.password, new_password) == 200
    done = page.locator('[role="status"]')
    expect(done).to_contain_text("Your password has been changed")
    expect(done).to_be_in_viewport()
    person.password = new_password

    # The mail says when, in the provider's zone and named so: never a bare UTC time.
    mail = mailbox.wait_for_mail(person.email, match=r"password has been changed")
    assert "Central European" in mail.text and "UTC" not in mail.text, mail.text
