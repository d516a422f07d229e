"""Passkeys through the Flask test client, with a software authenticator that makes real
WebAuthn objects: adding and removing them in the security centre, signing in with one alone
(`amr` hwk/swk + mfa, `acr`), as the second step, set up at the first sign-in instead of an
authenticator app, removed by a 2FA reset; and every refusal."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.extensions import db
from idp.models import Account, AuditEvent, Passkey
from idp.services import totp
from tests.authenticator import SoftwareAuthenticator
from tests.helpers import (T0, Browser, code_from_mail, decode, exchange_code, last_mail, make_account, mail_count,
                           signed_in_browser)

ICLOUD = bytes.fromhex("fbfc3007154e4ecc8c0b6e020557d7bd")
MFA = "https://refeds.org/profile/mfa"
REFUSED = "That passkey could not be used. Try again, or use another way to sign in."


@pytest.fixture(autouse=True)
def frozen_clock():
    clock.freeze(T0)


@pytest.fixture
def signed_in(browser, portal, person):
    """The person after the first sign-in (password, e-mail code, authenticator app), signed in now."""
    browser.http.environ_base.update(HTTP_ACCEPT_LANGUAGE="en")
    return signed_in_browser(browser, portal, person)


def add_passkey(b: Browser, authenticator: SoftwareAuthenticator, name: str = "Laptop", **options):
    b.get("/account/security")
    return b.use_passkey(authenticator, "add-passkey-form", name=name, **options)


@pytest.fixture
def device(signed_in):
    """A device-bound passkey the person added in the security centre."""
    authenticator = SoftwareAuthenticator()
    add_passkey(signed_in, authenticator)
    assert signed_in.status == 200 and "/account/security" in signed_in.url, (signed_in.status, signed_in.alert)
    return authenticator


def fresh_browser(app) -> Browser:
    b = Browser(app)
    b.http.environ_base.update(HTTP_ACCEPT_LANGUAGE="en")
    return b


def at_email_step(b: Browser, portal, **params) -> Browser:
    b.authorize(portal["client_id"], **params)
    assert b.step_state == "email" and "passkey-signin" in _button_ids(b), b.text
    return b


def _button_ids(b: Browser) -> dict:
    return {attrs["id"]: "" for form in b.page.forms.values() for attrs in form["button_attrs"] if attrs.get("id")}


def id_token(b: Browser, portal) -> dict:
    body = exchange_code(b.http, portal, b.callback_params()["code"], b.verifier).get_json()
    return decode(b.http, body["id_token"]).claims


def events(app, action, outcome=None):
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == action)
        if outcome:
            query = query.where(AuditEvent.outcome == outcome)
        return list(db.session.scalars(query))


def passkeys_of(app, sub) -> list[Passkey]:
    with app.app_context():
        rows = list(db.session.scalars(select(Passkey).where(Passkey.account_id == sub)))
        for row in rows:
            db.session.expunge(row)
        return rows


def security_text(b: Browser) -> str:
    b.get("/account/security")
    return b.text


# -- adding ------------------------------------------------------------------------------


def test_add_a_passkey_in_the_security_centre(app, signed_in, person):
    authenticator = SoftwareAuthenticator(aaguid=ICLOUD, synced=True, counter=False)
    add_passkey(signed_in, authenticator, name="  Work   phone ")
    assert signed_in.status == 200 and 'id="passkeys"' in signed_in.text
    assert "The passkey has been added" in signed_in.text
    [passkey] = passkeys_of(app, person["sub"])
    assert passkey.name == "Work phone" and passkey.backup_eligible and passkey.backed_up
    assert passkey.aaguid == "fbfc3007-154e-4ecc-8c0b-6e020557d7bd" and passkey.transports == ["internal"]
    page = security_text(signed_in)
    assert f'data-passkey-id="{passkey.id}"' in page and "Work phone" in page and "iCloud Keychain" in page
    assert "Synced to your other devices" in page and "Not used yet" in page
    assert "A passkey was added" in last_mail(app, person["email"]).subject
    assert events(app, "passkey.added") and "Passkey added" in page


def test_a_passkey_without_a_name_is_named_after_its_provider_or_passkey(app, signed_in, person):
    add_passkey(signed_in, SoftwareAuthenticator(aaguid=ICLOUD), name="")
    add_passkey(signed_in, SoftwareAuthenticator(), name="")
    assert [p.name for p in passkeys_of(app, person["sub"])] == ["iCloud Keychain", "Passkey"]


def test_adding_needs_a_fresh_sign_in_and_comes_back(app, signed_in, person):
    clock.advance(minutes=11)
    signed_in.get("/account/security")
    asked = signed_in.passkey_options("add-passkey-form", name="Laptop")
    assert asked.status_code == 401 and asked.get_json() == {"sign_in": "/account/security/passkeys/sign-in"}
    # Posting the form without a fresh sign-in leads to signing in again, too.
    form = signed_in.page.forms["add-passkey-form"]
    signed_in.post(form["action"], dict(form["fields"], credential="{}"), follow=False)
    assert signed_in.location.endswith("/account/security/passkeys/sign-in")
    signed_in.get(asked.get_json()["sign_in"])
    assert signed_in.step_state == "email" and signed_in.page.forms["step"]["fields"]["email"] == person["email"]
    clock.advance(seconds=30)
    signed_in.sign_in(person["email"], person["password"])
    assert signed_in.url.startswith("/account/security") and 'id="add-passkey-form"' in signed_in.text
    add_passkey(signed_in, SoftwareAuthenticator())
    assert len(passkeys_of(app, person["sub"])) == 1


def test_registration_refusals_store_nothing(app, signed_in, person):
    mails = mail_count(app, person["email"])
    cases = [
        ({"origin": "http://evil.test"}, 400),
        ({"rp_id": "evil.test"}, 400),
        ({"verified": False}, 400),
    ]
    for options, status in cases:
        add_passkey(signed_in, SoftwareAuthenticator(), **options)
        assert signed_in.status == status and "could not be added" in signed_in.alert, options
    # No answer from the browser; a name that is too long.
    signed_in.get("/account/security")
    signed_in.send_passkey("", "add-passkey-form")
    assert signed_in.status == 400 and "did not create a passkey" in signed_in.alert
    asked = signed_in.passkey_options("add-passkey-form", name="x" * 61)
    assert asked.status_code == 400 and "at most 60" in asked.get_json()["error"]
    assert passkeys_of(app, person["sub"]) == []
    assert len(events(app, "passkey.add", "failure")) == 3 and mail_count(app, person["email"]) == mails


def test_a_registration_answer_is_taken_once_and_not_after_it_expires(app, signed_in, person):
    authenticator = SoftwareAuthenticator()
    signed_in.get("/account/security")
    data = signed_in.passkey_options("add-passkey-form", name="Laptop").get_json()
    credential = authenticator.create(data["publicKey"], "http://idp.test")
    signed_in.send_passkey("{}", "add-passkey-form", flow=data["flow"])
    assert signed_in.status == 400
    signed_in.get("/account/security")
    signed_in.send_passkey(credential, "add-passkey-form", flow=data["flow"])  # its challenge is spent
    assert signed_in.status == 400 and passkeys_of(app, person["sub"]) == []

    signed_in.get("/account/security")
    data = signed_in.passkey_options("add-passkey-form").get_json()
    credential = authenticator.create(data["publicKey"], "http://idp.test")
    clock.advance(minutes=5, seconds=1)
    signed_in.send_passkey(credential, "add-passkey-form", flow=data["flow"])
    assert signed_in.status == 410 and "took too long" in signed_in.alert
    assert passkeys_of(app, person["sub"]) == []


def test_a_registration_flow_of_another_browser_is_not_found(app, signed_in, portal, person):
    signed_in.get("/account/security")
    data = signed_in.passkey_options("add-passkey-form").get_json()
    credential = SoftwareAuthenticator().create(data["publicKey"], "http://idp.test")
    other = fresh_browser(app)
    other.totp_secret, other._last_counter = signed_in.totp_secret, signed_in._last_counter
    clock.advance(seconds=30)
    other.get("/account")
    other.sign_in(person["email"], person["password"])
    other.get("/account/security")
    other.send_passkey(credential, "add-passkey-form", flow=data["flow"])
    assert other.status == 404 and passkeys_of(app, person["sub"]) == []


def test_the_same_authenticator_is_not_registered_twice(app, signed_in, person, device):
    signed_in.get("/account/security")
    data = signed_in.passkey_options("add-passkey-form").get_json()
    registered = {d["id"] for d in data["publicKey"]["excludeCredentials"]}
    assert registered == {p.credential_id for p in passkeys_of(app, person["sub"])}
    # A client that ignores the exclusion and sends the same credential again is refused.
    second = json.loads(device.create(data["publicKey"], "http://idp.test"))
    first = passkeys_of(app, person["sub"])[0]
    with app.app_context():
        db.session.execute(Passkey.__table__.update().values(credential_id=second["id"]).where(Passkey.id == first.id))
        db.session.commit()
    signed_in.send_passkey(json.dumps(second), "add-passkey-form", flow=data["flow"])
    assert signed_in.status == 409 and "registered already" in signed_in.alert


def test_at_most_so_many_passkeys(app, signed_in, person):
    app.config["PASSKEYS_PER_ACCOUNT"] = 2
    for _ in range(2):
        add_passkey(signed_in, SoftwareAuthenticator())
    signed_in.get("/account/security")
    asked = signed_in.passkey_options("add-passkey-form")
    assert asked.status_code == 409 and "Remove one" in asked.get_json()["error"]


# -- signing in with a passkey alone -----------------------------------------------------------


def test_sign_in_with_a_passkey_alone(app, portal, person, device):
    b = at_email_step(fresh_browser(app), portal)
    assert 'autocomplete="username webauthn"' in b.text and "data-conditional" in b.text
    clock.advance(minutes=1)
    b.use_passkey(device)
    claims = id_token(b, portal)
    assert claims["sub"] == person["sub"] and set(claims["amr"]) == {"hwk", "mfa"} and claims["acr"] == "phr"
    [passkey] = passkeys_of(app, person["sub"])
    assert passkey.sign_count == 1 and passkey.last_used_at == clock.now()
    # No password was asked: the sign-in's only steps are the passkey's.
    assert not [e for e in events(app, "login.password") if e.at >= clock.now()]
    assert events(app, "login.success")[-1].detail["amr"] == ["hwk", "mfa"]
    assert "<td>Passkey</td>" in security_text(b)


def test_a_synced_passkey_is_a_software_key(app, signed_in, portal, person):
    add_passkey(signed_in, synced := SoftwareAuthenticator(synced=True, counter=False))
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(synced)
    assert set(id_token(b, portal)["amr"]) == {"swk", "mfa"}
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(synced)  # its counter stays 0, as synced passkeys' do: no clone warning
    assert "code" in b.callback_params() and not events(app, "passkey.clone_warning")


def test_the_client_chooses_which_acr_a_passkey_sign_in_is_named(app, portal, device, client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["acr_values_supported"] == [MFA, "phr"]
    b = at_email_step(fresh_browser(app), portal, acr_values=f"{MFA} phr")
    b.use_passkey(device)
    assert id_token(b, portal)["acr"] == MFA
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["phr"]}}})
    b.authorize(portal["client_id"], claims=essential)  # the passkey session meets it: no new sign-in
    assert id_token(b, portal)["acr"] == "phr"


def test_an_essential_phishing_resistant_acr_needs_a_passkey(app, signed_in, portal, person, device):
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["phr"]}}})
    signed_in.authorize(portal["client_id"], claims=essential)
    assert signed_in.step_state == "email" and "This app asks you to sign in with a passkey" in signed_in.text
    clock.advance(seconds=30)
    signed_in.sign_in(person["email"], person["password"])  # a password and a code do not meet it
    assert signed_in.callback_params()["error"] == "unmet_authentication_requirements"
    signed_in.authorize(portal["client_id"], claims=essential)
    signed_in.use_passkey(device)
    assert id_token(signed_in, portal)["acr"] == "phr"
    signed_in.authorize(portal["client_id"], claims=essential, prompt="none")
    assert "code" in signed_in.callback_params()


def test_sign_in_refusals_answer_alike_and_count(app, portal, person, device):
    b = at_email_step(fresh_browser(app), portal)
    answers = []

    def refused(origin="http://idp.test", **options):
        data = b.passkey_options().get_json()
        b.send_passkey(device.get(data["publicKey"], origin, **options))
        answers.append((b.status, b.alert, b.step_state))

    refused(origin="http://evil.test")
    refused(rp_id="evil.test")
    refused(verified=False)
    stranger = SoftwareAuthenticator()
    stranger.create({"rp": {"id": "idp.test"}, "user": {"id": "eA"}, "challenge": "eA"}, "http://idp.test")
    data = b.passkey_options().get_json()
    b.send_passkey(stranger.get(data["publicKey"], "http://idp.test"))  # a passkey nobody registered here
    answers.append((b.status, b.alert, b.step_state))
    assert set(answers) == {(401, REFUSED, "email")}
    failures = events(app, "login.passkey", "failure")
    assert len(failures) == 4 and [e.account_id for e in failures].count(None) == 1
    # The owner sees the refusals of the known passkey in the security centre.
    assert all(e.account_id in (None, person["sub"]) for e in failures)


def test_a_challenge_is_used_once_and_only_on_its_own_flow_step(app, portal, device):
    b = at_email_step(fresh_browser(app), portal)
    data = b.passkey_options().get_json()
    good = device.get(data["publicKey"], "http://idp.test")
    b.send_passkey("not json")  # spends the challenge
    assert b.status == 401
    b.send_passkey(good)
    assert b.status == 401 and b.alert == REFUSED
    # An answer to older options is refused once newer ones were asked for.
    old = device.get(b.passkey_options().get_json()["publicKey"], "http://idp.test")
    b.passkey_options()
    b.send_passkey(old)
    assert b.status == 401
    # Another browser's flow is not found, whatever it sends.
    data = b.passkey_options().get_json()
    other = at_email_step(fresh_browser(app), portal)
    other.post(b.page.forms["passkey-form"]["action"],
               dict(other.page.forms["passkey-form"]["fields"], credential=device.get(data["publicKey"], "http://idp.test")))
    assert other.status == 404


def test_a_flow_that_expired_takes_no_passkey(app, portal, device):
    b = at_email_step(fresh_browser(app), portal)
    data = b.passkey_options().get_json()
    clock.advance(minutes=31)
    assert b.passkey_options().status_code == 410
    b.send_passkey(device.get(data["publicKey"], "http://idp.test"))
    assert b.status == 410 and "expired" in b.alert


def test_a_counter_that_goes_back_is_a_clone_warning(app, portal, person, device):
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(device)
    assert "code" in b.callback_params()
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(device, sign_count=1)  # the counter it reported last time: a copy of the key
    assert b.status == 401 and b.alert == REFUSED
    [warning] = events(app, "passkey.clone_warning")
    assert warning.account_id == person["sub"] and warning.outcome == "failure"
    assert passkeys_of(app, person["sub"])[0].sign_count == 1
    assert "may have been copied" in security_page_of(app, portal, person, device)


def security_page_of(app, portal, person, authenticator) -> str:
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(authenticator)
    return security_text(b)


def test_failed_passkey_sign_ins_pause_the_network_address_only(app, portal, person, device):
    b = at_email_step(fresh_browser(app), portal)
    for _ in range(app.config["LOCKOUT_AFTER_FAILURES"] - 1):
        b.use_passkey(device, verified=False)
        assert b.status == 401
    b.use_passkey(device, verified=False)
    assert b.status == 423 and "paused until" in b.alert
    b.use_passkey(device)  # the right passkey from here waits too
    assert b.status == 423
    assert events(app, "sign_in.locked")[0].detail["cause"] == "failed passkey sign-ins"
    # Another network, and the password from this one, are not affected.
    other = fresh_browser(app)
    other.http.environ_base.update(REMOTE_ADDR="192.0.2.44")
    at_email_step(other, portal).use_passkey(device)
    assert "code" in other.callback_params()
    with app.app_context():
        assert db.session.get(Account, person["sub"]).locked_until is None
    b.authorize(portal["client_id"])
    b.submit(email=person["email"])
    b.submit(password=person["password"])
    assert b.step_state == "totp"


def test_a_disabled_account_does_not_sign_in_with_its_passkey(app, portal, person, device, cli):
    assert cli.invoke(args=["support", "disable", person["email"], "--reason", "fraud"]).exit_code == 0
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(device)
    assert b.status == 403 and "disabled" in b.alert


# -- the second step --------------------------------------------------------------------------


def to_second_step(app, portal, person) -> Browser:
    b = fresh_browser(app)
    b.authorize(portal["client_id"])
    b.submit(email=person["email"])
    b.submit(password=person["password"])
    assert b.step_state in ("totp", None), (b.status, b.alert)
    return b


def test_a_passkey_as_the_second_step(app, portal, person, device):
    b = to_second_step(app, portal, person)
    assert "use-passkey" in _button_ids(b) and "totp_code" in b.page.forms["step"]["fields"]
    b.use_passkey(device)
    claims = id_token(b, portal)
    assert set(claims["amr"]) == {"pwd", "hwk", "mfa"} and claims["acr"] == "phr"
    [event] = [e for e in events(app, "login.passkey") if e.outcome == "success"]
    assert event.detail["purpose"] == "second factor"


def test_only_the_accounts_own_passkeys_are_offered_and_taken(app, portal, person, device):
    other_person = make_account(app, "bram@example.com", "another good password", name="Bram")
    other = fresh_browser(app)
    other.authorize(portal["client_id"])
    other.sign_in(other_person["email"], other_person["password"], first_time=True)
    theirs = SoftwareAuthenticator()
    add_passkey(other, theirs)
    b = to_second_step(app, portal, person)
    data = b.passkey_options().get_json()
    assert [d["id"] for d in data["publicKey"]["allowCredentials"]] == [passkeys_of(app, person["sub"])[0].credential_id]
    b.send_passkey(theirs.get(data["publicKey"] | {"allowCredentials": []}, "http://idp.test"))
    assert b.status == 401 and b.alert == REFUSED


def test_failed_second_step_passkeys_lock_the_account_like_wrong_codes(app, portal, person, device):
    b = to_second_step(app, portal, person)
    for _ in range(app.config["LOCKOUT_AFTER_FAILURES"] - 1):
        b.use_passkey(device, verified=False)
        assert b.status == 401
    b.use_passkey(device, verified=False)
    assert b.status == 423
    assert events(app, "account.locked")[0].detail["after"] == "passkey"


def test_the_options_of_a_step_without_passkeys_are_refused(app, portal, person, signed_in):
    b = to_second_step(app, portal, person)
    assert "passkey-form" not in b.page.forms
    response = b.http.post(b.url.split("?")[0] + "/passkey-options",
                           headers={"X-CSRFToken": b.page.forms["step"]["fields"]["csrf_token"]})
    assert response.status_code == 409 and response.get_json()["error"]


# -- the first sign-in, F5, F6, support -----------------------------------------------------


def first_login_with_a_passkey(app, portal, person, authenticator) -> Browser:
    b = fresh_browser(app)
    b.authorize(portal["client_id"])
    b.submit(email=person["email"])
    b.submit(password=person["password"])
    b.submit(email=person["email"])
    b.submit(email_code=code_from_mail(app, person["email"]))
    assert b.step_state == "totp_enroll" and "enrol-passkey" in _button_ids(b)
    refused = b.passkey_options(name="\x07")  # checked before the browser makes a passkey
    assert refused.status_code == 400 and "at most 60" in refused.get_json()["error"]
    b.use_passkey(authenticator, name="My phone")
    return b


def test_the_first_sign_in_can_set_up_a_passkey_instead_of_the_app(app, portal, person):
    authenticator = SoftwareAuthenticator()
    b = first_login_with_a_passkey(app, portal, person, authenticator)
    assert set(id_token(b, portal)["amr"]) == {"pwd", "hwk", "mfa"}
    with app.app_context():
        assert not db.session.get(Account, person["sub"]).totp_enrolled
    assert [p.name for p in passkeys_of(app, person["sub"])] == ["My phone"]
    # The next sign-in asks the passkey after the password; there is no code to give.
    b = to_second_step(app, portal, person)
    assert "step" not in b.page.forms and "use-passkey" in _button_ids(b)
    b.submit("passkey-form", action="passkey", credential="")
    assert b.status == 401
    b.use_passkey(authenticator)
    assert "code" in b.callback_params()


def test_the_last_second_factor_cannot_be_removed(app, portal, person):
    b = first_login_with_a_passkey(app, portal, person, SoftwareAuthenticator())
    page = security_text(b)
    assert 'id="last-passkey"' in page
    [passkey] = passkeys_of(app, person["sub"])
    b.post("/account/security/passkeys/remove", {"csrf_token": b.page.forms["add-passkey-form"]["fields"]["csrf_token"],
                                                 "passkey": passkey.id, "confirm": "yes", "remove": "yes"})
    assert b.status == 409 and "Add another passkey before you remove this one" in b.alert
    assert len(passkeys_of(app, person["sub"])) == 1


def test_a_passkey_only_account_changes_its_password_after_a_recent_sign_in(app, portal, person):
    b = first_login_with_a_passkey(app, portal, person, SoftwareAuthenticator())
    b.get("/account")
    assert "totp_code" not in b.page.forms["password-form"]["fields"]
    new = "Winter-boot-77-Haring"
    clock.advance(minutes=11)
    b.submit("password-form", current_password=person["password"], password=new, password_confirm=new)
    assert b.status == 403 and "sign in again with your passkey" in b.alert
    clock.advance(minutes=-10)
    b.submit("password-form", current_password=person["password"], password=new, password_confirm=new)
    assert b.status == 200 and "changed" in b.text


def test_forgotten_password_with_a_passkey_as_the_second_step(app, portal, person, device):
    b = fresh_browser(app)
    b.authorize(portal["client_id"])
    b.submit(email=person["email"])
    b.get(b.url + "/forgot-password")
    b.submit()
    b.submit(email_code=code_from_mail(app, person["email"]))
    assert b.step_state == "forgot_totp" and "use-passkey" in _button_ids(b)
    b.use_passkey(device)
    assert b.step_state == "new_password"
    b.submit(password="Winter-boot-77-Haring", password_confirm="Winter-boot-77-Haring")
    assert set(id_token(b, portal)["amr"]) == {"pwd", "hwk", "mfa"}


def test_support_reset_removes_the_passkeys(app, portal, person, device, cli):
    assert json.loads(cli.invoke(args=["accounts", "show", person["email"], "--json"]).output)["passkeys"] == 1
    result = cli.invoke(args=["support", "reset-2fa", person["email"], "--reason", "lost phone"])
    assert result.exit_code == 0, result.output
    assert passkeys_of(app, person["sub"]) == []
    assert events(app, "support.reset_2fa")[0].detail["passkeys_removed"] == 1
    assert "Je passkeys zijn verwijderd" in last_mail(app, person["email"]).text  # support's mails are Dutch
    b = at_email_step(fresh_browser(app), portal)
    b.use_passkey(device)
    assert b.status == 401


def test_the_2fa_reset_flow_removes_the_passkeys(app, portal, person, device):
    b = to_second_step(app, portal, person)
    b.get(b.url + "/reset-2fa")
    b.submit(email=person["email"])
    b.submit(email_code=code_from_mail(app, person["email"]))
    assert b.step_state == "totp_enroll"
    secret = b.page.ids["totp-secret"].replace(" ", "").strip()
    b.submit(totp_code=totp.code_for(secret))
    assert "code" in b.callback_params()
    assert passkeys_of(app, person["sub"]) == []
    assert events(app, "totp.reset")[0].detail["passkeys_removed"] == 1
    assert "passkeys were removed" in last_mail(app, person["email"]).text


def test_the_2fa_reset_flow_can_set_up_a_passkey_instead(app, portal, person, device):
    b = to_second_step(app, portal, person)
    b.get(b.url + "/reset-2fa")
    b.submit(email=person["email"])
    b.submit(email_code=code_from_mail(app, person["email"]))
    replacement = SoftwareAuthenticator()
    b.use_passkey(replacement, name="New phone")
    assert "code" in b.callback_params()
    assert [p.name for p in passkeys_of(app, person["sub"])] == ["New phone"]
    with app.app_context():
        assert not db.session.get(Account, person["sub"]).totp_enrolled
    assert mail_count(app, person["email"]) >= 2 and "set up again" in last_mail(app, person["email"]).subject


# -- removing ---------------------------------------------------------------------------------


def test_remove_a_passkey_after_confirming(app, signed_in, person, device):
    [passkey] = passkeys_of(app, person["sub"])
    signed_in.get("/account/security")
    form = next(f for f in signed_in.page.forms.values() if f["fields"].get("passkey") == passkey.id)
    assert ("remove", "yes") in form["buttons"]
    signed_in.post(form["action"], dict(form["fields"], remove="yes"))
    assert signed_in.status == 200 and "Remove the passkey Laptop?" in signed_in.text
    assert len(passkeys_of(app, person["sub"])) == 1  # asked only
    signed_in.submit("confirm-remove", remove="yes")
    assert "The passkey has been removed" in signed_in.text and passkeys_of(app, person["sub"]) == []
    assert "A passkey was removed" in last_mail(app, person["email"]).subject
    assert events(app, "passkey.removed")


def test_another_persons_passkey_cannot_be_removed(app, signed_in, person, device, portal):
    other_person = make_account(app, "bram@example.com", "another good password", name="Bram")
    other = fresh_browser(app)
    other.authorize(portal["client_id"])
    other.sign_in(other_person["email"], other_person["password"], first_time=True)
    [passkey] = passkeys_of(app, person["sub"])
    security_text(other)
    csrf = other.page.forms["add-passkey-form"]["fields"]["csrf_token"]
    for confirm in ("", "yes"):
        other.post("/account/security/passkeys/remove", {"csrf_token": csrf, "passkey": passkey.id, "confirm": confirm})
        assert other.status == 404 and "does not exist" in other.alert
    other.post("/account/security/passkeys/remove", {"passkey": passkey.id, "confirm": "yes"})
    assert other.status == 400  # no CSRF token
    with app.app_context():
        assert db.session.scalar(select(func.count(Passkey.id))) == 1
