"""F7 connector users: the reset portal with CAPTCHA and 24-hour throttle, and the password grant."""

from __future__ import annotations

import json
import re

import altcha
import pytest
from sqlalchemy import event, select

from idp import clock
from idp.extensions import db
from idp.models import AuditEvent, ConnectorUser
from tests.helpers import GOOD_PASSWORD, accept_until, basic, introspect, invite, last_mail, mail_count, make_client, token_request

pytestmark = pytest.mark.config(CAPTCHA_MAX_NUMBER=1000)
CONNECTOR_PASSWORD = "Bank-koppeling-99-Zon"


def solve(challenge: dict) -> str:
    parsed = altcha.Challenge.from_dict(challenge)
    return altcha.Payload(parsed, altcha.solve_challenge(parsed, timeout=60)).to_base64()


@pytest.fixture
def owner(app, cli, browser):
    """A client who accepted an invitation: owner of an administration with a connector user."""
    data = invite(cli)
    accept_until(browser, app, data["invitation_url"], "contract")
    browser.submit(accept_terms="yes", accept_privacy="yes")
    with app.app_context():
        connector = db.session.scalar(select(ConnectorUser))
        return {"email": "klant@example.com", "username": connector.username,
                "administration": connector.administration_id}


def portal_to_verify(browser, typed):
    browser.get("/connector-password")
    assert browser.step_state == "identify"
    challenge = browser.http.get("/connector-password/challenge").get_json()
    browser.submit(username=typed, altcha=solve(challenge))
    return browser


def request_reset(browser, typed, again=None):
    portal_to_verify(browser, typed)
    if browser.step_state != "verify":
        return browser
    browser.submit(username=again if again is not None else typed)
    return browser


def link_from_mail(app, to):
    return re.search(r"http://idp\.test(/connector-password/[\w-]+)", last_mail(app, to).text).group(1)


def test_connectors_show(cli, owner):
    out = json.loads(cli.invoke(args=["connectors", "show", "--administration", owner["administration"], "--json"]).output)
    assert out == {"username": owner["username"]}
    assert cli.invoke(args=["connectors", "show", "--administration", "nope"]).exit_code != 0


def test_account_page_links_to_the_portal(app, browser, owner):
    clock.freeze(clock.now())
    browser.forget()
    browser.get("/account")
    browser.sign_in(owner["email"], GOOD_PASSWORD, first_time=True, email_verified=True)
    browser.get("/account")
    assert owner["username"] in browser.text
    assert 'id="request-connector-password" href="/connector-password"' in browser.text


def test_reset_mails_the_owner_and_sets_the_password(app, browser, owner, client):
    typed = f"{owner['username'].lower()}@connect.example"
    request_reset(browser, typed)
    assert browser.step_state is None and "sent" in browser.page.ids
    link = link_from_mail(app, owner["email"])
    stranger = type(browser)(app)  # the owner opens the mail elsewhere
    stranger.get(link)
    assert stranger.status == 200
    stranger.submit(password="short", password_confirm="short")
    assert stranger.status == 400 and stranger.alert
    stranger.submit(password=CONNECTOR_PASSWORD, password_confirm=CONNECTOR_PASSWORD)
    assert "done" in stranger.page.ids
    assert last_mail(app, owner["email"]).kind == "connector_password_set"
    stranger.get(link)  # single use
    assert stranger.status == 410
    # The password grant now works through a client registered for it.
    bank = make_client(app, name="Bank", grant_types=("password",))
    r = token_request(client, bank, {"grant_type": "password", "username": owner["username"], "password": CONNECTOR_PASSWORD})
    assert r.status_code == 200, r.get_json()
    info = introspect(client, bank, r.get_json()["access_token"])
    assert info["active"] and info["sub"] == owner["username"] and info["administration"] == owner["administration"]


def test_the_whole_flow_expires_after_ten_minutes(app, browser, owner):
    clock.freeze(clock.now())  # the CAPTCHA's expiry also follows the real clock
    request_reset(browser, owner["username"])
    assert browser.status == 200, (browser.status, browser.alert, browser.step_state)
    link = link_from_mail(app, owner["email"])
    clock.advance(minutes=10, seconds=1)
    browser.get(link)
    assert browser.status == 410
    other = type(browser)(app)
    portal_to_verify(other, owner["username"])
    clock.advance(minutes=11)
    other.submit(username=owner["username"])
    assert other.status == 410


def generic(browser):
    return browser.status, browser.alert


def test_one_generic_answer_for_every_failure(app, browser, owner, cli):
    # A real username within its 24-hour limit ...
    request_reset(browser, owner["username"])
    assert mail_count(app, owner["email"]) == 3  # invitation, code, reset link
    real = type(browser)(app)
    request_reset(real, owner["username"])
    answers = {"24-hour limit": generic(real)}
    # ... an unknown one, a typo in the second step, a foreign domain, a failed CAPTCHA:
    answers["unknown"] = generic(request_reset(type(browser)(app), "UZZZZZ9999"))
    answers["typo"] = generic(request_reset(type(browser)(app), owner["username"], again=owner["username"][:-1] + "X"))
    answers["domain"] = generic(request_reset(type(browser)(app), owner["username"] + "@other.example"))
    bot = type(browser)(app)
    bot.get("/connector-password")
    bot.submit(username=owner["username"], altcha="bm90IGEgc29sdXRpb24=")
    answers["captcha"] = generic(bot)
    assert len(set(answers.values())) == 1, answers
    status, alert = answers["unknown"]
    assert status == 400 and "24" in alert
    assert mail_count(app, owner["email"]) == 3
    with app.app_context():
        reasons = {e.detail.get("why") for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "connector.reset_refused"))}
    assert {"24-hour limit", "unknown username", "typo"} <= reasons


def test_equal_work_for_unknown_and_real_names(app, browser, owner, monkeypatch):
    """No timing difference to measure: a throttled real name and an unknown one get the same
    answer after the same work (one mail rendered, the same rows written)."""
    from idp.services import mailer

    request_reset(browser, owner["username"])  # now throttled
    renders = []
    render = mailer.render
    monkeypatch.setattr(mailer, "render", lambda kind, *a, **kw: renders.append(kind) or render(kind, *a, **kw))
    with app.app_context():
        engine = db.engine

    def work(name):
        b = type(browser)(app)
        portal_to_verify(b, name)
        renders.clear()
        statements = []

        def count(conn, cursor, statement, *_):
            statements.append(statement.split(None, 1)[0].upper())

        event.listen(engine, "before_cursor_execute", count)
        try:
            b.submit(username=name)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        writes = sorted(s for s in statements if s in ("INSERT", "UPDATE", "DELETE"))
        return b.status, list(renders), writes

    real, unknown = work(owner["username"]), work("UQQQQQ1234")
    assert real == unknown and real[1] == ["email_code"], (real, unknown)


def test_captcha_solution_is_single_use(app, browser, owner):
    browser.get("/connector-password")
    payload = solve(browser.http.get("/connector-password/challenge").get_json())
    browser.submit(username=owner["username"], altcha=payload)
    assert browser.step_state == "verify"
    other = type(browser)(app)
    other.get("/connector-password")
    other.submit(username=owner["username"], altcha=payload)
    assert other.status == 400 and other.step_state == "identify"


def test_throttle_release_by_support(app, browser, owner, cli):
    request_reset(browser, owner["username"])
    assert generic(request_reset(type(browser)(app), owner["username"]))[0] == 400
    result = cli.invoke(args=["support", "release-reset-throttle", owner["username"], "--reason", "Owner called"])
    assert result.exit_code == 0, result.output
    again = request_reset(type(browser)(app), owner["username"])
    assert again.status == 200 and "sent" in again.page.ids
    events = json.loads(cli.invoke(args=["audit", "list", "--json"]).output)
    release = next(e for e in events if e["action"] == "support.release_reset_throttle")
    assert release["actor"].startswith("cli:") and release["reason"] == "Owner called" and release["subject"] == owner["username"]


# -- the password grant -----------------------------------------------------------------


@pytest.fixture
def bank(app):
    return make_client(app, name="Bank", grant_types=("password",))


@pytest.fixture
def with_password(app, browser, owner):
    request_reset(browser, owner["username"])
    setter = type(browser)(app)
    setter.get(link_from_mail(app, owner["email"]))
    setter.submit(password=CONNECTOR_PASSWORD, password_confirm=CONNECTOR_PASSWORD)
    return owner


def password_grant(client, bank, username, password):
    return token_request(client, bank, {"grant_type": "password", "username": username, "password": password})


def test_password_grant_only_for_registered_clients(app, client, with_password, portal):
    r = password_grant(client, portal, with_password["username"], CONNECTOR_PASSWORD)
    assert r.status_code == 400 and r.get_json()["error"] == "unauthorized_client"


def test_password_grant_refuses_people(app, client, bank, with_password, person):
    r = password_grant(client, bank, person["email"], person["password"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_password_grant_wants_the_bare_username(app, client, bank, with_password):
    r = password_grant(client, bank, with_password["username"] + "@connect.example", CONNECTOR_PASSWORD)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_connector_token_is_a_machine_token(app, client, bank, with_password):
    body = password_grant(client, bank, with_password["username"], CONNECTOR_PASSWORD).get_json()
    assert "refresh_token" not in body and "id_token" not in body
    r = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert r.status_code in (401, 403)


def test_wrong_passwords_lock_the_connector(app, client, bank, with_password, cli):
    for _ in range(5):
        assert password_grant(client, bank, with_password["username"], "wrong").status_code == 400
    r = password_grant(client, bank, with_password["username"], CONNECTOR_PASSWORD)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    assert cli.invoke(args=["support", "unlock", with_password["username"], "--reason", "bank called"]).exit_code == 0
    assert password_grant(client, bank, with_password["username"], CONNECTOR_PASSWORD).status_code == 200


def test_new_password_revokes_earlier_tokens(app, browser, client, bank, with_password, cli):
    old = password_grant(client, bank, with_password["username"], CONNECTOR_PASSWORD).get_json()["access_token"]
    cli.invoke(args=["support", "release-reset-throttle", with_password["username"], "--reason", "rotate"])
    request_reset(type(browser)(app), with_password["username"])
    setter = type(browser)(app)
    setter.get(link_from_mail(app, with_password["email"]))
    setter.submit(password="Nieuw-bank-wachtwoord-7", password_confirm="Nieuw-bank-wachtwoord-7")
    assert introspect(client, bank, old)["active"] is False
    assert password_grant(client, bank, with_password["username"], CONNECTOR_PASSWORD).status_code == 400


def test_revoking_a_connector_token_ends_it_alone(app, client, bank, with_password):
    first, second = (password_grant(client, bank, with_password["username"], CONNECTOR_PASSWORD).get_json()
                     for _ in range(2))
    assert client.post("/revoke", data={"token": first["access_token"]}, headers=basic(bank)).status_code == 200
    assert introspect(client, bank, first["access_token"])["active"] is False
    # Each connector token is a family of one: the other one lives on.
    assert introspect(client, bank, second["access_token"])["active"] is True


def test_the_link_checks_a_new_password_as_the_owner_types(app, browser, owner):
    request_reset(browser, owner["username"])
    link = link_from_mail(app, owner["email"])
    browser.get(link)
    token = browser.page.forms["step"]["fields"]["csrf_token"]

    def check(password, url=link + "/password-check"):
        return browser.http.post(url, data={"password": password, "password_confirm": password, "csrf_token": token})

    assert check(CONNECTOR_PASSWORD).get_json()["ok"] is True
    # The username (with the connector domain) and the administration's name are personal.
    for personal in (f"{owner['username']}-Zon-42-Fiets", "Bakkerij-Zon-42-Fiets"):
        verdict = check(personal).get_json()
        assert verdict["ok"] is False and verdict["rules"]["not_personal"] is False, personal
    assert check(CONNECTOR_PASSWORD, "/connector-password/not-a-link/password-check").status_code == 404
