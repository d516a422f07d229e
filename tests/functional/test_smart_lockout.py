"""Smart lockout: wrong passwords slow down and lock the browser or network they come from,
with the same answers for unknown addresses; the owner's familiar browser still signs in;
locks from passwords end by themselves; wrong authenticator codes still lock the account."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import AuditEvent, OutboxMail
from tests.helpers import CHEAP_CAPTCHA, Browser, mail_count, signed_in_browser, solve_captcha

pytestmark = pytest.mark.config(**CHEAP_CAPTCHA)

NOBODY = "nobody@example.com"
# Where the browser tells no time zone, times are in the provider's (TIME_ZONE).
PROVIDER_ZONE = ZoneInfo("Europe/Amsterdam")


def provider_time(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.timezone.utc).astimezone(PROVIDER_ZONE).strftime("%H:%M")


def at_password_step(browser, portal, email):
    browser.authorize(portal["client_id"])
    browser.submit(email=email)
    assert browser.step_state == "password", (browser.status, browser.alert)


def try_password(browser, password):
    """One try as a person would: solving the check first when the page shows it."""
    shows_captcha = 'id="captcha"' in browser.text
    browser.submit(password=password, altcha=solve_captcha(browser) if shows_captcha else None)
    return browser.status, browser.alert, shows_captcha


def attack(app, portal, email, tries, ip=None, zone=None):
    """A browser that never signed in here, trying wrong passwords: what it sees each time
    (``zone``: the time zone the browser tells)."""
    attacker = Browser(app)
    if ip:
        attacker.http.environ_base["REMOTE_ADDR"] = ip
    if zone:
        attacker.http.set_cookie("idp_tz", zone)
    at_password_step(attacker, portal, email)
    return attacker, [try_password(attacker, "wrong-%d" % n) for n in range(tries)]


@pytest.fixture
def owner(app, browser, portal, person):
    """The person's own browser, where they signed in before (signed out again since)."""
    signed_in_browser(browser, portal, person)
    browser.http.delete_cookie("idp_session")
    clock.advance(seconds=30)
    return browser


def owner_signs_in(owner, portal, person):
    at_password_step(owner, portal, person["email"])
    owner.submit(password=person["password"])
    assert owner.step_state == "totp", (owner.status, owner.alert)
    owner.submit(totp_code=owner.next_totp())
    assert "code" in owner.callback_params()
    owner.http.delete_cookie("idp_session")
    clock.advance(seconds=30)


def events(app, action):
    with app.app_context():
        return [(e.subject, e.account_id, e.detail) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


def mails(app, to, kind):
    with app.app_context():
        return [m.text for m in db.session.scalars(
            select(OutboxMail).where(OutboxMail.recipient == to, OutboxMail.kind == kind))]


def test_the_attacker_gets_the_captcha_then_a_lock_with_the_same_answers_for_an_unknown_address(
        app, portal, person, owner):
    start = clock.now()
    _, known = attack(app, portal, person["email"], 5)
    clock.freeze(start)
    _, unknown = attack(app, portal, NOBODY, 5)
    assert known == unknown
    statuses = [(status, captcha) for status, _, captcha in known]
    assert statuses == [(401, False), (401, False), (401, False), (401, True), (423, True)]
    # Until when, in the provider's zone and named so (the browser told none), never in UTC.
    assert f"{provider_time(start + dt.timedelta(minutes=15))} (Midden-Europese standaardtijd)" in known[-1][1]
    assert "UTC" not in known[-1][1]


def test_no_try_without_the_captcha_once_it_is_shown(app, portal, person, owner):
    attacker, _ = attack(app, portal, person["email"], 3)
    assert 'id="captcha"' in attacker.text
    for _ in range(5):
        attacker.submit(password=person["password"])  # even the right one: the check comes first
        assert attacker.status == 400 and attacker.step_state == "password"
    attacker.submit(password=person["password"], altcha="bm90IGEgc29sdXRpb24=")
    assert attacker.status == 400
    attacker.submit(password=person["password"], altcha=solve_captcha(attacker))
    assert attacker.step_state == "totp"


def test_many_wrong_passwords_elsewhere_do_not_stop_the_owner_on_their_browser(app, portal, person, owner):
    attacker, seen = attack(app, portal, person["email"], 5)
    assert seen[-1][0] == 423
    for _ in range(3):  # 20 wrong passwords in all, locks waited out
        clock.advance(hours=2)
        at_password_step(attacker, portal, person["email"])
        seen = [try_password(attacker, "wrong") for _ in range(5)]
        assert seen[-1][0] == 423
    try_password(attacker, person["password"])
    assert attacker.status == 423  # the right password does not pass a locked source
    # The same network address, but the browser where the owner signed in before.
    owner_signs_in(owner, portal, person)
    # And from another network, a new browser is not locked either.
    elsewhere = Browser(app)
    elsewhere.totp_secret = owner.totp_secret
    elsewhere._last_counter = owner._last_counter
    elsewhere.http.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    at_password_step(elsewhere, portal, person["email"])
    elsewhere.submit(password=person["password"])
    assert elsewhere.step_state == "totp"


def shown_until(alert: str) -> dt.datetime:
    """The end of the lock as the page says it, to a browser in UTC ("23 nov 2026 09:15")."""
    match = re.search(r"(\d{1,2}) nov\.? (\d{4}) (\d\d):(\d\d)", alert)
    assert match, alert
    day, year, hour, minute = map(int, match.groups())
    return dt.datetime(year, 11, day, hour, minute)


def test_locks_from_passwords_grow_and_end_by_themselves(app, portal, person, owner):
    attacker, seen = attack(app, portal, person["email"], 5, zone="UTC")
    lengths = []
    for _ in range(8):
        assert attacker.status == 423
        locked_at, until = clock.now(), shown_until(attacker.alert)
        lengths.append(math.ceil((until - locked_at).total_seconds() / 60))  # the page shows whole minutes
        clock.freeze(until - dt.timedelta(minutes=1))
        at_password_step(attacker, portal, person["email"])
        assert try_password(attacker, person["password"])[0] == 423
        clock.freeze(until + dt.timedelta(minutes=1))
        at_password_step(attacker, portal, person["email"])
        seen = [try_password(attacker, "wrong") for _ in range(5)]
        assert [status for status, _, _ in seen] == [401] * 4 + [423]
    assert lengths == [15, 30, 60, 120, 240, 480, 960, 1440]
    # However often: once the lock is over, the right password goes through.
    clock.advance(hours=24, minutes=1)
    at_password_step(attacker, portal, person["email"])
    try_password(attacker, person["password"])
    assert attacker.step_state == "totp"


def test_each_lock_is_audited_and_mailed_to_the_owner_only(app, portal, person, owner):
    until = provider_time(clock.now() + dt.timedelta(minutes=15))
    attack(app, portal, person["email"], 5, zone="America/New_York")  # mail is in the provider's zone
    attack(app, portal, NOBODY, 5)
    locked = events(app, "sign_in.locked")
    assert [subject for subject, _, _ in locked] == [person["email"], NOBODY]
    assert locked[0][1] == person["sub"] and locked[1][1] is None
    assert locked[0][2]["cause"] == "wrong passwords" and locked[0][2]["until"]
    [text] = mails(app, person["email"], "sign_in_locked")
    assert until in text
    assert "127.0.0.1" not in text and "wrong-" not in text
    assert mail_count(app, NOBODY) == 0


def test_support_unlock_releases_a_locked_source(app, portal, person, owner, cli):
    attacker, seen = attack(app, portal, person["email"], 5)
    assert seen[-1][0] == 423
    result = cli.invoke(args=["support", "unlock", person["email"], "--reason", "caller verified"])
    assert result.exit_code == 0, result.output
    at_password_step(attacker, portal, person["email"])
    attacker.submit(password=person["password"])
    assert attacker.step_state == "totp"


def test_wrong_authenticator_codes_lock_the_account_and_the_third_time_until_support(
        app, portal, person, owner, cli):
    for round_ in range(3):
        at_password_step(owner, portal, person["email"])
        owner.submit(password=person["password"])
        for _ in range(5):
            owner.submit(totp_code="000000")
        assert owner.status == 423 and owner.alert
        clock.advance(minutes=16)
    assert "support" in owner.alert.lower()
    clock.advance(days=2)
    at_password_step(owner, portal, person["email"])
    owner.submit(password="wrong")
    assert owner.status == 401  # the lock shows to the right password only
    owner.submit(password=person["password"])
    assert owner.status == 423
    assert len(mails(app, person["email"], "account_locked")) == 3
    result = cli.invoke(args=["support", "unlock", person["email"], "--reason", "caller verified"])
    assert result.exit_code == 0, result.output
    owner_signs_in(owner, portal, person)


def test_the_device_cookie_is_long_lived_signed_and_http_only(app, portal, person, owner):
    cookie = owner.http.get_cookie("idp_device")
    assert cookie is not None and cookie.http_only
    assert cookie.expires is not None and cookie.expires > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=300)
    attacker, seen = attack(app, portal, person["email"], 5)
    assert seen[-1][0] == 423
    # A forged or altered cookie does not make the attacker's browser familiar.
    attacker.http.set_cookie("idp_device", cookie.value[:-3] + ("aaa" if not cookie.value.endswith("aaa") else "bbb"))
    at_password_step(attacker, portal, person["email"])
    attacker.submit(password=person["password"])
    assert attacker.status == 423


def test_racing_first_failures_of_one_source_get_the_same_answer(app, portal):
    """Two tries that arrive together for an address never tried before: both are counted
    and both get the ordinary answer, not a server error."""
    import threading

    browsers = [Browser(app) for _ in range(2)]
    for b in browsers:
        at_password_step(b, portal, NOBODY)
    barrier = threading.Barrier(len(browsers))
    statuses = []

    def go(b):
        barrier.wait()
        b.submit(password="wrong")
        statuses.append(b.status)

    threads = [threading.Thread(target=go, args=(b,)) for b in browsers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert statuses == [401, 401]


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ACCOUNT="3 per hour",
                    REDIS_URL=os.environ.get("IDP_TEST_REDIS_URL", ""))
def test_the_per_address_limit_stops_unfamiliar_sources_only(app, portal, person, owner):
    """Tries spread over many networks use up the address's hourly tries (SECURITY.md: the
    per-address limit); a new browser then waits, the owner's familiar browser does not."""
    for n in range(3):
        attack(app, portal, person["email"], 1, ip=f"203.0.113.{n + 1}")
    _, seen = attack(app, portal, person["email"], 1, ip="203.0.113.99")
    assert seen[0][0] == 429 and seen[0][1]
    owner_signs_in(owner, portal, person)
