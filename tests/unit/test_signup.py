"""The trial sign-up as a stored flow and its service, at a frozen clock: the checks of each
step, the order of the steps, expiry, and what the last step creates."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.errors import CaptchaRequired, FlowExpired, InvalidInput, StepOutOfOrder, TermsNotAccepted, UnknownFirmCode
from idp.extensions import db
from idp.flows import SignupFlow
from idp.models import Account, Administration, EmailCode, FirmClient
from idp.services import accounts, administrations, signup
from tests.helpers import CTX, GOOD_PASSWORD, T0

@pytest.fixture(autouse=True)
def english(app):
    """The refusals in English (the default language of a request without one is Dutch)."""
    from flask_babel import force_locale

    with app.test_request_context(), force_locale("en"):
        yield


COMPANY = {"company_name": "  Fietsenmaker   Piet ", "kvk_number": "12.34.56.78", "address": "Dorpsstraat 1,\n1234 AB Utrecht"}


def test_company_details_are_tidied_and_each_fault_is_named(ctx):
    assert signup.company_details(COMPANY) == {"company_name": "Fietsenmaker Piet", "kvk_number": "12345678",
                                               "address": "Dorpsstraat 1, 1234 AB Utrecht"}
    with pytest.raises(InvalidInput) as refused:
        signup.company_details({"company_name": "x" * 201, "kvk_number": "1234567", "address": "x" * 301})
    message = refused.value.message()
    assert "200 characters" in message and "8 digits" in message and "address is too long" in message
    # The address is optional: CONTRACT section 7 does not list it among the fields.
    assert signup.company_details({**COMPANY, "address": " "})["address"] == ""


def test_the_first_page_names_every_fault_at_once(ctx):
    first = {**COMPANY, "iban": "NL91 ABNA 0417 1643 00", "email": "Piet@Example.com", "name": " Piet  Jansen "}
    assert signup.first_page(first) == {
        "company": {"company_name": "Fietsenmaker Piet", "kvk_number": "12345678", "address": "Dorpsstraat 1, 1234 AB Utrecht"},
        "iban": "NL91ABNA0417164300", "email": "piet@example.com", "name": "Piet Jansen"}
    with pytest.raises(InvalidInput) as refused:
        signup.first_page({**first, "kvk_number": "1", "iban": "NL91ABNA0417164301", "email": "piet@"})
    message = refused.value.message()
    assert "8 digits" in message and "check digits" in message and "valid e-mail address" in message
    with pytest.raises(InvalidInput) as refused:
        signup.company_details({**COMPANY, "kvk_number": "١٢٣٤٥٦٧٨"})  # digits, but not 0-9
    assert "8 digits" in refused.value.message()


@pytest.mark.parametrize("typed, compact", [
    ("NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
    ("nl91abna0417164300", "NL91ABNA0417164300"),
    ("DE89-3704-0044-0532-0130-00", "DE89370400440532013000"),
    ("BE68 5390 0754 7034", "BE68539007547034"),
])
def test_good_ibans_are_kept_compact(ctx, typed, compact):
    assert signup.bank_account(typed) == compact
    assert signup.shown_iban(compact).replace(" ", "") == compact


@pytest.mark.parametrize("typed, says", [
    (None, "Enter the IBAN"),
    ("   ", "Enter the IBAN"),
    ("NL91ABNA0417164301", "check digits"),
    ("ZZ91ABNA0417164300", "ZZ is not one"),
    ("NL91ABNA04171643001", "NL has 18 characters; this one has 19"),
    ("NL91ABN10417164300", "format of a bank account in NL"),
    ("NL91ÄBNA0417164300", "only letters and digits"),
    ("N" * 40, "only letters and digits"),
    ("BE41539007547035", "account number"),
    ("SA0380000000608010167519", "SEPA"),
])
def test_bad_ibans_get_a_message_per_fault(ctx, typed, says):
    with pytest.raises(InvalidInput) as refused:
        signup.bank_account(typed)
    assert says in refused.value.message()


@pytest.mark.config(TRIAL_DAYS=45)
def test_the_trial_ends_after_the_set_number_of_days(ctx):
    assert signup.trial_ends() == T0 + dt.timedelta(days=45)


def flow_at(state, **data):
    flow = SignupFlow.create(state=state, data=data)
    db.session.commit()
    return flow


READY = {"company": {"company_name": "Fietsenmaker Piet", "kvk_number": "12345678", "address": "Dorpsstraat 1"},
         "iban": "NL91ABNA0417164300", "email": "piet@example.com", "name": "Piet", "email_verified": True}


def test_the_first_step_wants_the_captcha(ctx):
    flow = flow_at("company")
    with pytest.raises(CaptchaRequired):
        flow.advance("company", {**COMPANY, "altcha": "garbage"}, CTX)
    assert flow.state == "company" and "company" not in flow.data


FIRST = {**COMPANY, "iban": "NL91 ABNA 0417 1643 00", "name": "Piet"}


@pytest.fixture
def solved(monkeypatch):
    """The CAPTCHA taken as solved (its own tests are in test_captcha.py)."""
    from idp.services import captcha

    monkeypatch.setattr(captcha, "verify", lambda payload: True)


def test_the_first_step_mails_a_code_for_any_address(ctx, account, solved):
    for email in ("anna@example.com", "nobody@example.com"):
        flow = flow_at("company")
        assert flow.advance("company", {**FIRST, "email": email}, CTX) == "email_code"
        assert db.session.scalar(select(func.count(EmailCode.id)).where(EmailCode.flow_id == flow.id)) == 1


def test_after_the_code_an_existing_address_ends_the_flow(ctx, account, solved):
    flow = flow_at("company")
    flow.advance("company", {**FIRST, "email": "Anna@Example.com"}, CTX)
    code = _code_for(flow)
    assert flow.advance("email_code", {"email_code": code}, CTX) == "existing"
    with pytest.raises(StepOutOfOrder):
        flow.advance("existing", {}, CTX)
    assert db.session.scalar(select(func.count(Account.id))) == 1


def _code_for(flow):
    """The code of the flow's last mail (the unit tests read the outbox like a person reads mail)."""
    import re

    from idp.models import OutboxMail

    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.kind == "email_code").order_by(OutboxMail.id.desc()))
    return re.search(r"\b(\d{6})\b", mail.text).group(1)


def test_the_whole_flow_creates_everything_at_the_end(ctx, solved):
    firm = administrations.create_firm("Boekhouders BV")
    db.session.commit()
    flow = SignupFlow.start()
    assert flow.advance("company", {**FIRST, "email": "piet@example.com"}, CTX) == "email_code"
    assert flow.advance("email_code", {"email_code": _code_for(flow)}, CTX) == "password"
    assert flow.advance("password", {"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD}, CTX) == "contract"
    terms = {"accept_terms": "yes", "accept_privacy": "yes"}
    with pytest.raises(UnknownFirmCode):
        flow.advance("contract", {**terms, "firm_code": "AAAA-AAAA"}, CTX)
    with pytest.raises(TermsNotAccepted):
        flow.advance("contract", {"accept_terms": "yes", "firm_code": firm.firm_code}, CTX)
    assert db.session.scalar(select(func.count(Account.id))) == 0
    clock.advance(seconds=600)
    assert flow.advance("contract", {**terms, "firm_code": firm.firm_code}, CTX) == "done"
    db.session.commit()
    account = accounts.find_by_email("piet@example.com")
    administration = flow.administration
    assert account.email_verified and flow.row.account_id == account.id and flow.data["password_hash"] is None
    assert administration.plan == "trial" and administration.trial_ends_at == T0 + dt.timedelta(days=30, seconds=600)
    assert db.session.scalar(select(FirmClient.firm_id).where(FirmClient.administration_id == administration.id)) == firm.id


def test_the_last_step_checks_that_everything_before_it_was_done(ctx):
    flow = flow_at("contract", **{**READY, "email_verified": False, "password_hash": "x"})
    with pytest.raises(StepOutOfOrder):
        flow.advance("contract", {"accept_terms": "yes", "accept_privacy": "yes"}, CTX)
    assert db.session.scalar(select(func.count(Administration.id))) == 0


def test_steps_out_of_order_and_expiry(ctx, solved):
    flow = flow_at("company")
    with pytest.raises(StepOutOfOrder):
        flow.advance("password", {"password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD}, CTX)
    with pytest.raises(StepOutOfOrder):
        flow.advance("company", {}, CTX, action="resend")
    clock.advance(minutes=30)
    with pytest.raises(FlowExpired):
        flow.advance("company", {**FIRST, "email": "piet@example.com"}, CTX)


def test_the_code_step_can_go_back_for_another_address(ctx, solved):
    flow = flow_at("company")
    flow.advance("company", {**FIRST, "email": "piet@example.com"}, CTX)
    assert flow.advance("email_code", {}, CTX, action="change_email") == "company"
    assert signup.entered(flow.data) == {
        "company_name": "Fietsenmaker Piet", "kvk_number": "12345678", "address": "Dorpsstraat 1, 1234 AB Utrecht",
        "iban": "NL91 ABNA 0417 1643 00", "email": "piet@example.com", "name": "Piet"}


def test_the_graph_has_every_action_as_an_edge():
    for state, actions in SignupFlow.ACTIONS.items():
        for target in actions.values():
            assert target in SignupFlow.TRANSITIONS[state]
    assert SignupFlow.FINAL == {"done", "existing"}
    assert set(SignupFlow.PAGES) <= set(SignupFlow.TRANSITIONS)
