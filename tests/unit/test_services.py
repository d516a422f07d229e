"""Services and the login flow without a request, with a frozen clock."""

from __future__ import annotations

import altcha
import pytest

from idp import clock
from idp.errors import (
    CaptchaRequired,
    FlowExpired,
    InvalidCredentials,
    InvalidEmail,
    InvalidEmailCode,
    InvalidTotp,
    ResendTooSoon,
    SignInLocked,
    StepOutOfOrder,
    TooManyAttempts,
)
from idp.extensions import db
from idp.flows import LoginFlow
from idp.services import accounts, captcha, crypto, email_codes, passwords, totp
from tests.helpers import CHEAP_CAPTCHA, CTX


def test_normalize_email():
    assert accounts.normalize_email("  Anna@Example.COM ") == "anna@example.com"
    for bad in ("", "anna", "anna@", "@example.com", "a" * 400 + "@example.com", "anna@exa mple.com"):
        with pytest.raises(InvalidEmail):
            accounts.normalize_email(bad)


def test_password_hash_is_argon2id():
    stored = passwords.hash_password("pw")
    assert stored.startswith("$argon2id$") and "m=19456,t=2,p=1" in stored
    assert passwords.verify_password(stored, "pw")
    assert not passwords.verify_password(stored, "other")
    assert not passwords.verify_password(None, "pw")
    assert not passwords.verify_password("garbage", "pw")


@pytest.mark.config(SIGN_IN_CAPTCHA_AFTER_FAILURES=10, **CHEAP_CAPTCHA)
def test_check_password_and_lockout(account):
    assert accounts.check_password("anna@example.com", "secret password", ip=None) is account
    with pytest.raises(InvalidCredentials):
        accounts.check_password("nobody@example.com", "x", ip=None)
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            accounts.check_password("anna@example.com", "wrong", ip=None)
    with pytest.raises(SignInLocked):
        accounts.check_password("anna@example.com", "wrong", ip=None)
    with pytest.raises(SignInLocked):
        accounts.check_password("anna@example.com", "secret password", ip=None)
    clock.advance(minutes=15, seconds=1)
    # After a lock the source stays slowed down: the CAPTCHA first, until a right password.
    with pytest.raises(CaptchaRequired):
        accounts.check_password("anna@example.com", "secret password", ip=None)
    parsed = altcha.Challenge.from_dict(captcha.new_challenge())
    solved = altcha.Payload(parsed, altcha.solve_challenge(parsed, timeout=60)).to_base64()
    assert accounts.check_password("anna@example.com", "secret password", ip=None, captcha_payload=solved) is account
    assert accounts.check_password("anna@example.com", "secret password", ip=None) is account


@pytest.mark.config(SIGN_IN_CAPTCHA_AFTER_FAILURES=10)
def test_failures_outside_the_window_do_not_add_up(account):
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            accounts.check_password("anna@example.com", "wrong", ip=None)
    clock.advance(minutes=16)
    with pytest.raises(InvalidCredentials):
        accounts.check_password("anna@example.com", "wrong", ip=None)
    assert account.locked_until is None


def test_totp_window_and_replay(account):
    secret = totp.new_secret()
    accounts.enrol_totp(account, secret, totp.code_for(secret), ip=None)
    with pytest.raises(InvalidTotp):
        accounts.check_totp(account, totp.code_for(secret), ip=None)  # replay of the enrolment code
    step = clock.timestamp() // 30
    accounts.check_totp(account, totp.code_for(secret, step + 1), ip=None)
    with pytest.raises(InvalidTotp):
        accounts.check_totp(account, totp.code_for(secret, step), ip=None)  # older than the last one
    with pytest.raises(InvalidTotp):
        accounts.check_totp(account, "12345", ip=None)
    with pytest.raises(InvalidTotp):
        accounts.enrol_totp(account, totp.new_secret(), "000000", ip=None)


def test_totp_secret_is_encrypted_at_rest(account):
    secret = totp.new_secret()
    accounts.enrol_totp(account, secret, totp.code_for(secret), ip=None)
    assert secret.encode() not in account.totp_secret
    assert totp.unseal(account.totp_secret) == secret


def test_email_codes(account):
    email_codes.issue_email_code(account.email, "verify_email", account=account, flow_id=None, locale="en", ip=None)
    with pytest.raises(ResendTooSoon):
        email_codes.issue_email_code(account.email, "verify_email", account=account, flow_id=None, locale="en", ip=None)
    with pytest.raises(InvalidEmailCode):
        email_codes.verify_email_code(account.email, "verify_email", "abc", flow_id=None, ip=None)


def test_email_code_hash_is_keyed(ctx):
    assert crypto.keyed_hash("123456", "email-code") != crypto.token_hash("123456")


def flow_at_password(account):
    flow = LoginFlow.start({"client_id": "x"})
    flow.advance("email", {"email": "anna@example.com"}, CTX)
    return flow


def test_flow_refuses_other_states(account):
    flow = flow_at_password(account)
    with pytest.raises(StepOutOfOrder):
        flow.advance("email", {"email": "anna@example.com"}, CTX)
    with pytest.raises(StepOutOfOrder):
        flow.advance("totp", {"totp_code": "123456"}, CTX)
    with pytest.raises(StepOutOfOrder):
        flow.advance("password", {}, CTX, action="resend")
    assert flow.state == "password"


def test_flow_expires(account):
    flow = flow_at_password(account)
    clock.advance(minutes=31)
    with pytest.raises(FlowExpired):
        flow.advance("password", {"password": "secret password"}, CTX)


def test_flow_first_login_path(app, account):
    flow = flow_at_password(account)
    assert flow.advance("password", {"password": "secret password"}, CTX) == "verify_email"
    assert flow.advance("verify_email", {"email": "ANNA@example.com"}, CTX) == "email_code"
    from sqlalchemy import select

    from idp.models import OutboxMail

    mail = db.session.scalars(select(OutboxMail)).all()[-1]
    code = next(w for w in mail.text.split() if w.isdigit() and len(w) == 6)
    assert flow.advance("email_code", {"email_code": code}, CTX) == "totp_enroll"
    secret = flow.pending_totp_secret()
    assert flow.advance("totp_enroll", {"totp_code": totp.code_for(secret)}, CTX) == "resume"
    assert account.email_verified and account.totp_enrolled
    with pytest.raises(StepOutOfOrder):
        flow.pending_totp_secret()
    with pytest.raises(RuntimeError):
        flow.move_to("email")


def test_email_code_attempts(account):
    flow = flow_at_password(account)
    flow.advance("password", {"password": "secret password"}, CTX)
    flow.advance("verify_email", {"email": "anna@example.com"}, CTX)
    for _ in range(4):
        with pytest.raises(InvalidEmailCode):
            flow.advance("email_code", {"email_code": "99999x"}, CTX)
    with pytest.raises(TooManyAttempts):
        flow.advance("email_code", {"email_code": "99999x"}, CTX)


def test_audit_trail_is_append_only(account):
    from sqlalchemy import select

    from idp.models import AuditEvent
    from idp.services import audit

    audit.record("test.event", account=account)
    db.session.commit()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "test.event")).one()
    event.reason = "changed"
    with pytest.raises(RuntimeError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, event.id))
    with pytest.raises(RuntimeError):
        db.session.commit()
    db.session.rollback()
