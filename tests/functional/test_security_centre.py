"""The security centre (/account/security): the apps a person granted and withdrawing them,
the running sessions and ending them, recent sign-ins; every action and its refusals."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import AuditEvent, Consent, OutboxLogout, SsoSession

from ..helpers import (FULL, Beside, Browser, basic, decode, engine_on, exchange_code, introspect, make_account,
                       make_client, refresh, signed_in_browser, tokens_for)

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")


@pytest.fixture
def signed_in(browser, portal, person):
    browser.http.environ_base.update(HTTP_USER_AGENT=FIREFOX, HTTP_ACCEPT_LANGUAGE="en")
    return signed_in_browser(browser, portal, person)


def another_browser(app, first: Browser, person, *, ip="192.0.2.7", user_agent=SAFARI) -> Browser:
    """The same person signed in on a second device (the authenticator app is the same)."""
    other = Browser(app)
    other.http.environ_base.update(REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent, HTTP_ACCEPT_LANGUAGE="en")
    other.totp_secret, other._last_counter = first.totp_secret, first._last_counter
    clock.advance(seconds=30)
    other.get("/account")
    other.sign_in(person["email"], person["password"])
    first._last_counter = other._last_counter
    assert other.status == 200 and other.url.startswith("/account"), (other.status, other.url)
    return other


def security(b: Browser, query: str = "") -> Browser:
    b.get("/account/security" + query)
    assert b.status == 200, (b.status, b.alert)
    return b


def app_ids(b: Browser) -> list[str]:
    return re.findall(r'data-client-id="([^"]+)"', b.text)


def session_entries(b: Browser) -> list[tuple[str, bool]]:
    return [(handle, bool(current)) for handle, current in re.findall(r'data-session="([^"]+)"( data-current)?', b.text)]


def status_text(b: Browser) -> str:
    match = re.search(r'role="status">([^<]*)<', b.text)
    return match.group(1) if match else ""


def form_with(b: Browser, **fields) -> dict:
    for form in b.page.forms.values():
        if all(form["fields"].get(k) == v for k, v in fields.items()):
            return form
    raise AssertionError(f"no form with {fields}")


def press(b: Browser, button: str, csrf: bool = True, **fields):
    """Press ``button`` in the security centre's form that carries ``fields``."""
    form = form_with(security(b), **fields)
    data = dict(form["fields"], **{button: "yes"})
    if not csrf:
        data.pop("csrf_token")
    return b.post(form["action"], data, follow=False)


def revoke(b: Browser, client_id: str, csrf: bool = True):
    return press(b, "revoke", csrf, client_id=client_id)


def end(b: Browser, handle: str, csrf: bool = True):
    return press(b, "end", csrf, session=handle)


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def consent_to(b: Browser, client, scope=FULL, **params) -> dict:
    b.authorize(client["client_id"], scope=scope, **params)
    if b.step_state == "consent":
        b.submit(decision="allow")
    response = exchange_code(b.http, client, b.callback_params()["code"], b.verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- the page ------------------------------------------------------------------------------


def test_the_page_needs_a_sign_in_and_comes_back_to_it(app, browser, portal, person):
    signed_in_browser(browser, portal, person)
    browser.forget()
    browser.get("/account/security")
    assert browser.step_state == "email"
    clock.advance(seconds=30)
    browser.sign_in(person["email"], person["password"])
    assert browser.status == 200 and browser.url.startswith("/account/security")
    assert 'id="apps"' in browser.text and 'id="sessions"' in browser.text and 'id="sign-ins"' in browser.text
    browser.get("/account")
    assert 'href="/account/security"' in browser.text


def test_the_apps_granted_with_scopes_first_granted_and_last_used(app, signed_in, portal, third_party):
    portal_tokens = tokens_for(signed_in, portal)
    clock.advance(minutes=5)
    consent_to(signed_in, third_party, scope="openid email offline_access")
    clock.advance(hours=2)
    refresh(signed_in.http, portal, portal_tokens["refresh_token"])
    security(signed_in)
    assert sorted(app_ids(signed_in)) == sorted([portal["client_id"], third_party["client_id"]])
    scan = signed_in.text.split(f'data-client-id="{third_party["client_id"]}"')[1].split("</li>\n")[0]
    assert "Scan service" in scan and "Your e-mail address" in scan and "Staying connected" in scan
    assert "Your name" not in scan
    assert 'datetime="2026-11-23T09:05' in scan  # granted and last used when the code was exchanged
    own = signed_in.text.split(f'data-client-id="{portal["client_id"]}"')[1].split("</li>\n")[0]
    assert 'datetime="2026-11-23T09:00' in own and 'datetime="2026-11-23T11:05' in own  # the refresh is its last use
    assert "Part of the suite" in own


def test_an_app_whose_tokens_all_ended_is_not_listed(app, signed_in, portal):
    tokens_for(signed_in, portal)
    assert app_ids(security(signed_in)) == [portal["client_id"]]
    clock.advance(days=31)  # the refresh token has expired, and the browser signs in again
    signed_in.forget()
    signed_in.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    signed_in.get("/account/security")
    signed_in.sign_in("anna@example.com", "correct horse battery staple")
    assert app_ids(security(signed_in)) == []
    assert "No app has access to your account." in signed_in.text


# -- withdrawing an app's access ------------------------------------------------------------


def test_withdrawing_a_third_party_app_ends_its_consent_and_every_token(app, signed_in, third_party):
    first = consent_to(signed_in, third_party)
    clock.advance(minutes=1)
    second = consent_to(signed_in, third_party, scope="openid email")  # a second grant, under the same consent
    response = revoke(signed_in, third_party["client_id"])
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/security?done=app#apps")
    security(signed_in, "?done=app")
    assert "withdrawn" in status_text(signed_in)
    assert third_party["client_id"] not in app_ids(signed_in)
    assert refresh(signed_in.http, third_party, first["refresh_token"]).get_json()["error"] == "invalid_grant"
    for body in (first, second):
        assert introspect(signed_in.http, third_party, body["access_token"])["active"] is False
    assert signed_in.http.get("/userinfo", headers={"Authorization": "Bearer " + second["access_token"]}).status_code == 401
    with app.app_context():
        assert db.session.scalars(select(Consent)).all() == []
    (event,) = events(app, "app.revoked")
    assert event.detail["client"] == third_party["client_id"] and event.detail["consents_withdrawn"] == 1
    # The app asks for consent again.
    signed_in.authorize(third_party["client_id"], scope="openid email")
    assert signed_in.step_state == "consent"


def test_withdrawing_a_first_party_app_ends_its_tokens_and_it_signs_in_again(app, signed_in, portal):
    body = tokens_for(signed_in, portal)
    assert revoke(signed_in, portal["client_id"]).status_code == 302
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 400
    assert introspect(signed_in.http, portal, body["access_token"])["active"] is False
    again = tokens_for(signed_in, portal)  # no consent asked: the SSO session signs it in again
    assert introspect(signed_in.http, portal, again["access_token"])["active"] is True


def test_a_code_issued_before_the_withdrawal_gets_no_tokens(app, signed_in, portal, third_party):
    exchange_code(signed_in.http, portal, signed_in.first_code, signed_in.verifier)
    signed_in.authorize(portal["client_id"], scope=FULL)
    code = signed_in.callback_params()["code"]
    revoke(signed_in, portal["client_id"])
    response = exchange_code(signed_in.http, portal, code, signed_in.verifier)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_withdrawing_refusals_change_nothing(app, signed_in, portal, third_party):
    body = consent_to(signed_in, third_party)
    # Another person's app: their grant is not this person's to withdraw.
    other = make_account(app, "bob@example.com", "another good password", name="Bob")
    bob = Browser(app)
    signed_in_browser(bob, portal, other)
    bob_app = make_client(app, name="Bob's app", first_party=False)
    bob_tokens = consent_to(bob, bob_app)
    security(signed_in)
    form = form_with(signed_in, client_id=third_party["client_id"])
    for client_id, status in ((bob_app["client_id"], 404), ("no-such-client", 404), ("", 404), ("x" * 5000, 404)):
        signed_in.post(form["action"], dict(form["fields"], client_id=client_id, revoke="yes"))
        assert signed_in.status == status and "no access" in signed_in.alert, client_id
    assert introspect(bob.http, bob_app, bob_tokens["access_token"])["active"] is True
    # Without the CSRF token.
    response = revoke(signed_in, third_party["client_id"], csrf=False)
    assert response.status_code == 400
    assert introspect(signed_in.http, third_party, body["access_token"])["active"] is True
    # Twice: the second is stale.
    assert revoke(signed_in, third_party["client_id"]).status_code == 302
    signed_in.post(form["action"], dict(form["fields"], revoke="yes"))
    assert signed_in.status == 404 and signed_in.alert
    assert len(events(app, "app.revoked")) == 1


# -- sessions ------------------------------------------------------------------------------------


def test_sessions_show_device_address_and_times_and_mark_the_current_one(app, signed_in, person):
    phone = another_browser(app, signed_in, person)
    security(signed_in)
    entries = session_entries(signed_in)
    assert len(entries) == 2 and [current for _, current in entries] == [True, False]
    assert "Firefox 133 · Windows 10" in signed_in.text and "Mobile Safari 17 · iOS 17.1" in signed_in.text
    assert "192.0.2.7" in signed_in.text and "127.0.0.1" in signed_in.text
    assert "This browser" in signed_in.text
    security(phone)
    assert [current for _, current in session_entries(phone)] == [True, False]
    assert session_entries(phone)[0][0] == entries[1][0]  # the same session, seen from the phone


def test_last_seen_is_written_at_most_once_per_interval(app, signed_in, person):
    def last_seen():
        with app.app_context():
            (row,) = db.session.scalars(select(SsoSession)).all()
            return row.last_seen_at

    start = last_seen()
    assert start == clock.now()
    clock.advance(minutes=4)
    security(signed_in)
    assert last_seen() == start  # within five minutes: nothing written
    clock.advance(minutes=2)
    security(signed_in)
    assert last_seen() == clock.now()
    assert clock.now().strftime('datetime="%Y-%m-%dT%H:%M:%SZ"') in signed_in.text


def test_last_seen_that_cannot_be_written_leaves_the_answer_as_it_is(app, signed_in, monkeypatch, caplog):
    """Written after the answer's commit: a write the database refuses (here a table that is not
    there) is left undone and logged; the page was answered."""
    from sqlalchemy import column, table, update

    from idp.services import sessions

    monkeypatch.setattr(sessions, "_SEEN", update(table("no_such_table", column("x"))).values(x=1))
    clock.advance(minutes=6)
    with caplog.at_level("WARNING", logger="idp.unit_of_work"):
        security(signed_in)
    assert "a write after the request was left undone" in caplog.text
    signed_in.get("/account")
    assert signed_in.status == 200


def test_on_postgresql_last_seen_skips_a_session_row_another_transaction_holds(app, signed_in):
    """The browser's own session row, held by another transaction (a password change elsewhere
    ending it): the page does not wait for it, and "last seen" is left for a later visit."""
    engine = engine_on(app, "postgresql", "PostgreSQL's row locks")
    with app.app_context():
        (row,) = db.session.scalars(select(SsoSession)).all()
        sid, before = row.id, row.last_seen_at
    clock.advance(minutes=6)
    holder = engine.raw_connection()
    try:
        holder.cursor().execute("SELECT 1 FROM sessions WHERE id = %s FOR UPDATE", (sid,))
        page = Beside(lambda: security(signed_in).status)
        page.join(10)
        finished = not page.running()
    finally:
        holder.rollback()
        holder.close()
    assert finished, "the page waited for the held row"
    assert page.result() == 200
    with app.app_context():
        assert db.session.get(SsoSession, sid).last_seen_at == before


def test_ending_another_session_signs_that_browser_out(app, signed_in, portal, person):
    backchannel = make_client(app, name="Invoicing", extra=["--backchannel-logout-uri", "http://app.test/bc"])
    phone = another_browser(app, signed_in, person)
    phone_tokens = tokens_for(phone, backchannel, scope="openid email")
    phone_handle = [h for h, current in session_entries(security(signed_in)) if not current][0]
    response = end(signed_in, phone_handle)
    assert response.status_code == 302 and response.headers["Location"].endswith("?done=session#sessions")
    security(signed_in, "?done=session")
    assert "ended" in status_text(signed_in)
    assert [current for _, current in session_entries(signed_in)] == [True]
    phone.get("/account")
    assert phone.step_state == "email"  # signed out
    assert introspect(phone.http, backchannel, phone_tokens["access_token"])["active"] is False
    with app.app_context():
        (logout,) = db.session.scalars(select(OutboxLogout)).all()
        assert logout.client_id == backchannel["client_id"]
    (event,) = events(app, "session.ended")
    assert event.actor == person["sub"]


def test_ending_all_other_sessions(app, signed_in, person):
    another_browser(app, signed_in, person, ip="192.0.2.8")
    another_browser(app, signed_in, person, ip="192.0.2.9")
    assert len(session_entries(security(signed_in))) == 3
    form = next(f for f in signed_in.page.forms.values() if f["action"].endswith("/sessions/others"))
    response = signed_in.post(form["action"], form["fields"], follow=False)
    assert response.headers["Location"].endswith("?done=others#sessions")
    security(signed_in, "?done=others")
    assert "other sessions have been ended" in status_text(signed_in)
    assert [current for _, current in session_entries(signed_in)] == [True]
    assert 'id="end-all-sessions" disabled' in signed_in.text
    assert len(events(app, "session.ended")) == 2
    # Without the CSRF token nothing ends.
    another_browser(app, signed_in, person)
    security(signed_in)
    signed_in.post(form["action"], {})
    assert signed_in.status == 400 and len(session_entries(security(signed_in))) == 2


def test_ending_the_current_session_signs_out(app, signed_in, portal):
    body = tokens_for(signed_in, portal)
    (handle, current), = session_entries(security(signed_in))
    response = end(signed_in, handle)
    assert response.headers["Location"].endswith("/account/security/signed-out")
    signed_in.get(response.headers["Location"])
    assert signed_in.status == 200 and "You ended the session of this browser" in status_text(signed_in)
    signed_in.get("/account/security")
    assert signed_in.step_state == "email"
    # The offline connection outlives the sign-in; the access token of the session does not.
    assert introspect(signed_in.http, portal, body["access_token"])["active"] is False
    assert refresh(signed_in.http, portal, body["refresh_token"]).status_code == 200


def test_ending_refusals_change_nothing(app, signed_in, portal, person):
    phone = another_browser(app, signed_in, person)
    phone_handle = session_entries(security(phone))[0][0]
    other = make_account(app, "bob@example.com", "another good password", name="Bob")
    bob = Browser(app)
    signed_in_browser(bob, portal, other)
    bob_handle = session_entries(security(bob))[0][0]
    form = form_with(security(signed_in), session=phone_handle)
    for handle in (bob_handle, "nonsense", "", "x" * 5000):
        signed_in.post(form["action"], dict(form["fields"], session=handle, end="yes"))
        assert signed_in.status == 404 and "ended already" in signed_in.alert, handle
    assert end(signed_in, phone_handle, csrf=False).status_code == 400
    security(bob)
    security(phone)  # both still signed in
    assert end(signed_in, phone_handle).status_code == 302
    signed_in.post(form["action"], dict(form["fields"], end="yes"))
    assert signed_in.status == 404  # stale: ended a moment ago
    assert len(events(app, "session.ended")) == 1


def test_actions_without_a_session_lead_to_sign_in(app, browser):
    browser.get("/account/security")
    assert browser.step_state == "email"
    token = browser.page.forms["step"]["fields"]["csrf_token"]  # this browser's own, valid CSRF token
    for path in ("/account/security/apps", "/account/security/sessions", "/account/security/sessions/others"):
        response = browser.post(path, {"csrf_token": token, "client_id": "x", "session": "y"}, follow=False)
        assert response.status_code == 302 and "/login/" in response.headers["Location"], path
    assert events(app, "app.revoked") == [] and events(app, "session.ended") == []


# -- sign-ins ------------------------------------------------------------------------------------


def test_sign_ins_and_security_events_in_words(app, browser, portal, person):
    browser.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    signed_in_browser(browser, portal, person)
    browser.forget()
    clock.advance(minutes=1)
    browser.http.environ_base.update(REMOTE_ADDR="198.51.100.4", HTTP_ACCEPT_LANGUAGE="en")
    browser.get("/account/security")
    browser.submit(email=person["email"])
    browser.submit(password="not the password")
    assert browser.status == 401
    clock.advance(seconds=30)
    browser.submit(password=person["password"])
    browser.submit(totp_code=browser.next_totp())
    security(browser)
    table = browser.text.split('id="sign-ins"')[1]
    assert "Sign-in: wrong password" in table and "198.51.100.4" in table and "Failed" in table
    assert "Signed in" in table and "Password + Authenticator app" in table and "Succeeded" in table
    assert "E-mail code confirmed" in table and "Authenticator app set up" in table
    assert "login.success" not in table and "login.password" not in table
    # In Dutch.
    security(browser, "?lang=nl")
    table = browser.text.split('id="sign-ins"')[1]
    assert "Aangemeld" in table and "Wachtwoord + Authenticator-app" in table and "Mislukt" in table


@pytest.mark.config(SECURITY_EVENTS_PER_PAGE=3)
def test_sign_ins_are_paged(app, signed_in):
    security(signed_in)
    assert len(re.findall(r"<tr class=", signed_in.text)) == 3
    assert 'id="older-events"' in signed_in.text and 'id="newer-events"' not in signed_in.text
    first_page = signed_in.text
    signed_in.get(signed_in.page.ids and re.search(r'id="older-events" href="([^"]+)"', first_page).group(1))
    assert signed_in.status == 200 and 'id="newer-events"' in signed_in.text
    assert signed_in.text.split('id="sign-ins"')[1] != first_page.split('id="sign-ins"')[1]
    for page in ("0", "-1", "abc", "99999999"):
        security(signed_in, f"?page={page}")  # a page that makes no sense shows the first


# -- one connection per app per login -------------------------------------------------------------


def test_the_consent_page_says_when_an_earlier_connection_will_end(app, signed_in, third_party):
    first = consent_to(signed_in, third_party)
    assert 'id="one-connection"' not in signed_in.text
    signed_in.authorize(third_party["client_id"], scope=FULL, prompt="consent")
    assert signed_in.step_state == "consent" and 'id="one-connection"' in signed_in.text
    assert "One connection per app per login" in signed_in.text
    signed_in.authorize(third_party["client_id"], scope="openid email", prompt="consent")
    assert signed_in.step_state == "consent" and 'id="one-connection"' not in signed_in.text  # no offline access
    consent_to(signed_in, third_party, prompt="consent")
    assert refresh(signed_in.http, third_party, first["refresh_token"]).status_code == 400
    (given, *_) = events(app, "consent.granted")
    assert given.detail["client"] == third_party["client_id"]
