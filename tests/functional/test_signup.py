"""F8 trial sign-up at /signup: the steps, every refusal, the one transaction at the end,
and the first sign-in of the new account."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.extensions import db
from idp.models import Account, Administration, AuditEvent, ConnectorUser, EmailCode, FirmClient, Membership
from tests.helpers import (CHEAP_CAPTCHA, GOOD_PASSWORD, T0, Browser, code_from_mail, decode, make_account, make_firm,
                           mail_count, solve_captcha, tokens_for)

pytestmark = pytest.mark.config(**CHEAP_CAPTCHA)

EMAIL = "piet@example.com"
COMPANY = {"company_name": "Fietsenmaker Piet", "kvk_number": "1234 5678", "address": "Dorpsstraat 1, 1234 AB Utrecht"}
IBAN = "NL91 ABNA 0417 1643 00"
# The first page: the company, its bank account and the person.
FIRST = {**COMPANY, "iban": IBAN, "email": EMAIL, "name": "Piet Jansen"}


@pytest.fixture(autouse=True)
def frozen():
    clock.freeze(T0)
    yield
    clock.freeze(None)


def count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def nothing_created(app) -> bool:
    return count(app, Account) == 0 and count(app, Administration, Administration.kind == "company") == 0 \
        and count(app, Membership) == 0 and count(app, ConnectorUser) == 0


def start(app) -> Browser:
    b = Browser(app)
    b.get("/?lang=en")
    b.get("/signup")
    assert b.step_state == "company", (b.status, b.alert)
    return b


def until(b, state, email=EMAIL, firm_code=""):
    """Walk the sign-up from its first page to ``state``."""
    steps = [
        ("company", lambda: b.submit(**{**FIRST, "email": email}, altcha=solve_captcha(b, "/signup/challenge"))),
        ("email_code", lambda: b.submit(email_code=code_from_mail(b.app, email.lower()))),
        ("password", lambda: b.submit(password=GOOD_PASSWORD, password_confirm=GOOD_PASSWORD)),
        ("contract", lambda: b.submit(accept_terms="yes", accept_privacy="yes", firm_code=firm_code)),
    ]
    for name, take in steps:
        if b.step_state == state:
            return b
        assert b.step_state == name, (name, b.step_state, b.status, b.alert)
        take()
        assert b.status == 200, (name, b.status, b.alert)
    return b


def test_nothing_is_written_until_the_last_step_then_everything_at_once(app):
    b = until(start(app), "contract")
    assert "Fietsenmaker Piet" in b.page.ids["contract"] and "12345678" in b.page.ids["contract"]
    assert "NL91 ABNA 0417 1643 00" in b.page.ids["contract"] and EMAIL in b.page.ids["contract"]
    assert b.page.ids["plan"] == "Trial until 23 Dec 2026"
    assert nothing_created(app)
    b.submit(accept_terms="yes")
    assert b.status == 400 and b.alert and nothing_created(app)
    b.submit(accept_terms="yes", accept_privacy="yes")
    assert b.status == 200 and b.step_state is None and b.page.ids["plan"] == "Trial until 23 Dec 2026"
    assert "login_hint=piet@example.com" in b.text
    with app.app_context():
        account = db.session.scalar(select(Account))
        assert (account.email, account.name, account.email_verified) == (EMAIL, "Piet Jansen", True)
        assert account.password_hash.startswith("$argon2id$") and not account.totp_enrolled
        (membership,) = account.memberships
        administration = membership.administration
        assert membership.role == "owner"
        assert (administration.name, administration.plan, administration.kvk_number, administration.iban) == (
            "Fietsenmaker Piet", "trial", "12345678", "NL91ABNA0417164300")
        assert administration.address == "Dorpsstraat 1, 1234 AB Utrecht"
        assert administration.trial_ends_at == T0 + dt.timedelta(days=30)
        assert re.fullmatch(r"U[A-Z0-9]{5}\d{4}", administration.connector.username)
        assert db.session.scalar(select(func.count(FirmClient.id))) == 0
        actions = [e.action for e in db.session.scalars(select(AuditEvent).where(AuditEvent.account_id == account.id))]
        assert {"account.created", "signup.completed"} <= set(actions)
    # The finished flow cannot be submitted again.
    b.post(b.url, {"state": "contract", "accept_terms": "yes", "accept_privacy": "yes"})
    assert b.status >= 400 and count(app, Account) == 1


@pytest.mark.config(**CHEAP_CAPTCHA, TRIAL_DAYS=14)
def test_the_trial_length_is_a_setting(app):
    b = until(start(app), "contract")
    assert b.page.ids["plan"] == "Trial until 7 Dec 2026"


def test_first_sign_in_asks_no_code_again_and_the_app_sees_the_administration(app, portal):
    until(start(app), None)
    b = Browser(app)
    b.authorize(portal["client_id"], scope="openid email administrations")
    b.submit(email=EMAIL)
    b.submit(password=GOOD_PASSWORD)
    assert b.step_state == "totp_enroll", (b.step_state, b.alert)  # no e-mail code: the sign-up confirmed it
    b.totp_secret = b.page.ids["totp-secret"].replace(" ", "").strip()
    b.submit(totp_code=b.next_totp())
    code = b.callback_params()["code"]
    from tests.helpers import exchange_code

    tokens = exchange_code(b.http, portal, code, b.verifier).get_json()
    claim = decode(b.http, tokens["id_token"]).claims["administrations"]
    assert [(a["name"], a["role"]) for a in claim] == [("Fietsenmaker Piet", "owner")]
    b.get("/account?lang=en")
    assert "Trial until 23 Dec 2026" in b.page.ids["administrations"]


def test_a_firm_code_gives_the_firm_access(app):
    accountant = make_account(app, "bert@boekhouders.example", "correct horse battery staple")
    firm = make_firm(app, "Boekhouders BV", accountants=[accountant["email"]])
    b = until(start(app), "contract")
    for wrong in ("ABCD-EFGH", "12", "not a code at all"):
        b.submit(firm_code=wrong, accept_terms="yes", accept_privacy="yes")
        assert b.status == 400 and "firm" in b.alert and b.step_state == "contract"
        assert b.page.forms["step"]["fields"]["firm_code"] == wrong
        assert count(app, Administration, Administration.kind == "company") == 0
    code = firm["firm_code"]
    b.submit(firm_code=f"{code[:4].lower()} {code[4:]}", accept_terms="yes", accept_privacy="yes")
    assert b.status == 200 and b.page.ids["signup-firm"] == "Boekhouders BV"
    with app.app_context():
        administration = db.session.scalar(select(Administration).where(Administration.kind == "company"))
        link = db.session.scalar(select(FirmClient))
        assert (link.firm_id, link.administration_id) == (firm["administration_id"], administration.id)
        owner = db.session.scalar(select(Account).where(Account.email == EMAIL))
        linked = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "firm.linked")).all()
        assert [(e.actor, e.subject, e.detail) for e in linked] == [
            (owner.id, firm["administration_id"], {"administration": administration.id, "firm": "Boekhouders BV",
                                                   "role": "accountant", "via": "signup"})]


def test_a_sign_up_without_a_firm_code_links_no_firm(app):
    b = until(start(app), "contract")
    b.submit(firm_code="", accept_terms="yes", accept_privacy="yes")
    assert b.status == 200
    assert count(app, FirmClient) == 0 and count(app, AuditEvent, AuditEvent.action == "firm.linked") == 0


def test_the_first_page_needs_the_captcha_and_checks_each_field(app):
    b = start(app)
    assert 'id="captcha"' in b.text and "/signup/challenge" in b.text
    b.submit(**FIRST)
    assert b.status == 400 and "robot" in b.alert and b.step_state == "company"
    b.submit(**FIRST, altcha="garbage")
    assert b.status == 400 and "robot" in b.alert
    b.submit(company_name="", kvk_number="1234567", address="x" * 301, iban="", email="piet@",
             altcha=solve_captcha(b, "/signup/challenge"))
    assert b.status == 400 and b.step_state == "company"
    assert "name of your company" in b.alert and "8 digits" in b.alert and "address is too long" in b.alert
    assert "Enter the IBAN" in b.alert and "valid e-mail address" in b.alert and count(app, EmailCode) == 0
    for kvk in ("123456789", "1234567a", "12-34-56-78"):
        b.submit(**{**FIRST, "kvk_number": kvk}, altcha=solve_captcha(b, "/signup/challenge"))
        assert b.status == 400 and "8 digits" in b.alert and b.page.forms["step"]["fields"]["kvk_number"] == kvk
        assert b.page.forms["step"]["fields"]["iban"] == IBAN and b.page.forms["step"]["fields"]["email"] == EMAIL
    # A solution is good once.
    solved = solve_captcha(b, "/signup/challenge")
    b.submit(**{**FIRST, "kvk_number": "x"}, altcha=solved)
    b.submit(**FIRST, altcha=solved)
    assert b.status == 400 and "robot" in b.alert
    # The address is optional (CONTRACT section 7 lists the fields a client may rely on).
    b.submit(**{**FIRST, "address": ""}, altcha=solve_captcha(b, "/signup/challenge"))
    assert b.step_state == "email_code"


@pytest.mark.parametrize("typed, says", [
    ("", "Enter the IBAN"),
    ("NL91 ABNA 0417 1643 01", "check digits"),
    ("NL00ABNA0417164300", "check digits"),
    ("XX91ABNA0417164300", "XX is not one"),
    ("NL91ABNA041716430", "NL has 18 characters; this one has 17"),
    ("NL91ABN10417164300", "format of a bank account in NL"),
    ("NL91 ABNA 0417 1643 0!", "only letters and digits"),
    ("BE41539007547035", "account number in this IBAN fails its check"),
    ("BR1500000000000010932840814P2", "SEPA"),
])
def test_each_fault_of_an_iban_has_its_own_message(app, typed, says):
    b = start(app)
    b.submit(**{**FIRST, "iban": typed}, altcha=solve_captcha(b, "/signup/challenge"))
    assert b.status == 400 and b.step_state == "company" and says in b.alert, b.alert
    assert b.page.forms["step"]["fields"]["iban"] == typed
    b.submit(**{**FIRST, "iban": "de89 3704 0044 0532 0130 00"}, altcha=solve_captcha(b, "/signup/challenge"))
    assert b.step_state == "email_code"


def test_an_address_with_an_account_is_told_to_sign_in_only_after_the_code(app):
    make_account(app, "anna@example.com", "correct horse battery staple")
    known, unknown = start(app), start(app)
    known.submit(**{**FIRST, "email": "Anna@Example.com"}, altcha=solve_captcha(known, "/signup/challenge"))
    unknown.submit(**{**FIRST, "email": "nobody@example.com"}, altcha=solve_captcha(unknown, "/signup/challenge"))
    # Up to the code, both answer alike: a code page and a code mail.
    assert known.status == unknown.status == 200 and known.step_state == unknown.step_state == "email_code"
    def shown(b, email):
        return re.sub(r'/signup/flow/[^"/]+|name="csrf_token" value="[^"]+"', "", b.text).replace(email, "X")

    assert shown(known, "anna@example.com") == shown(unknown, "nobody@example.com")
    assert mail_count(app, "anna@example.com") == 1 and mail_count(app, "nobody@example.com") == 1
    known.submit(email_code=code_from_mail(app, "anna@example.com"))
    assert known.status == 200 and known.step_state is None and "account already" in known.text
    assert "login_hint=anna@example.com" in known.text
    assert count(app, Account) == 1 and count(app, Administration) == 0


def test_an_address_that_gets_an_account_meanwhile_is_refused_at_the_end(app):
    b = until(start(app), "contract")
    make_account(app, EMAIL, "correct horse battery staple")
    b.submit(accept_terms="yes", accept_privacy="yes")
    assert b.status == 409 and "Sign in" in b.alert
    assert count(app, Account) == 1 and count(app, Administration) == 0


def test_code_step_wrong_code_resend_and_another_address(app):
    b = until(start(app), "email_code")
    right = code_from_mail(app, EMAIL)
    b.submit(email_code="000000" if right != "000000" else "111111")
    assert b.status == 400 and b.step_state == "email_code"
    clock.advance(seconds=31)
    b.action("resend")
    assert b.step_state == "email_code" and mail_count(app, EMAIL) == 2
    b.submit(email_code=right)
    assert b.status == 400, "the first code was replaced by the new one"
    b.action("change_email")
    fields = b.page.forms["step"]["fields"]
    assert b.step_state == "company" and fields["email"] == EMAIL and fields["iban"] == IBAN
    assert fields["company_name"] == "Fietsenmaker Piet" and fields["kvk_number"] == "12345678"
    b.submit(**{**fields, "email": "other@example.com"}, altcha=solve_captcha(b, "/signup/challenge"))
    b.submit(email_code=code_from_mail(app, "other@example.com"))
    assert b.step_state == "password"


def test_password_policy_and_the_live_check(app):
    b = until(start(app), "password")
    url = b.url + "/password-check"
    token = b.page.forms["step"]["fields"]["csrf_token"]
    verdict = b.http.post(url, data={"password": "short", "password_confirm": "", "csrf_token": token}).get_json()
    assert verdict["ok"] is False and verdict["rules"]["length"] is False
    verdict = b.http.post(url, data={"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD,
                                     "csrf_token": token}).get_json()
    assert verdict["ok"] is True
    for bad, confirm in [("short1!", "short1!"), ("password1234", "password1234"), ("piet-Zomer-fiets-42", "piet-Zomer-fiets-42"),
                         (GOOD_PASSWORD, GOOD_PASSWORD + "x")]:
        b.submit(password=bad, password_confirm=confirm)
        assert b.status == 400 and b.alert and b.step_state == "password", bad
    assert 'value="' + GOOD_PASSWORD not in b.text
    b.submit(password=GOOD_PASSWORD, password_confirm=GOOD_PASSWORD)
    assert b.step_state == "contract"
    assert b.http.post(url, data={"password": "x", "csrf_token": token}).status_code == 404


def test_a_flow_belongs_to_its_browser_and_refuses_steps_out_of_order(app):
    b = until(start(app), "email_code")
    other = Browser(app)
    other.get(b.url)
    assert other.status == 404
    b.post(b.url, {**b.page.forms["step"]["fields"], "state": "contract", "accept_terms": "yes", "accept_privacy": "yes"})
    assert b.status == 409 and b.alert and nothing_created(app)
    clock.advance(seconds=app.config["FLOW_LIFETIME"] + 1)
    b.get(b.url)
    assert b.status == 410 and b.alert


def test_a_failure_half_way_leaves_nothing(app, monkeypatch):
    from idp.services import administrations

    b = until(start(app), "contract")

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(administrations, "new_connector_username", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    b.submit(accept_terms="yes", accept_privacy="yes")
    assert b.status == 500
    assert nothing_created(app)
    monkeypatch.undo()
    b.get(b.url)
    assert b.step_state == "contract"  # the flow did not move either: the person can try again
    b.submit(accept_terms="yes", accept_privacy="yes")
    assert count(app, Account) == 1 and count(app, ConnectorUser) == 1


@pytest.mark.config(**CHEAP_CAPTCHA, RATELIMIT_ENABLED=True, RATELIMIT_SIGNUP_FIRST_STEP="2 per hour")
def test_the_first_step_is_limited_per_address(app):
    b = start(app)
    for _ in range(2):
        b.submit(**{**FIRST, "kvk_number": "1"}, altcha=solve_captcha(b, "/signup/challenge"))
        assert b.status == 400 and "8 digits" in b.alert
    b.submit(**FIRST, altcha=solve_captcha(b, "/signup/challenge"))
    assert b.status == 429
    other = Browser(app)
    other.get("/signup")
    other.submit(**FIRST, altcha=solve_captcha(other, "/signup/challenge"))
    assert other.status == 429, "the limit is per IP address, not per flow"
    assert count(app, EmailCode) == 0
