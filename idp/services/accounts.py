"""Accounts: creation, lookup, password and authenticator checks, lockout."""

from __future__ import annotations


from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from .. import clock
from ..errors import AccountDisabled, AccountLocked, InvalidCredentials, InvalidEmail, InvalidTotp, TooManyAttempts
from ..extensions import db
from ..models import Account
from ..unit_of_work import kept
from flask_babel import lazy_gettext as _l

from . import audit, lockout, mailer, passwords, password_policy, sessions, throttles, tokens, totp
from ..errors import PasswordRejected



def normalize_email(value: str) -> str:
    """The canonical form of an address, or InvalidEmail. No DNS lookups."""
    value = (value or "").strip()
    if not value or len(value) > 320:
        raise InvalidEmail()
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidEmail() from None
    return result.normalized.lower()


def find_by_email(email: str) -> Account | None:
    return db.session.scalar(select(Account).where(func.lower(Account.email) == email.lower()))


def create_account(email: str, password: str, name: str = "", role: str = "user") -> Account:
    email = normalize_email(email)
    if find_by_email(email) is not None:
        raise ValueError(f"an account with e-mail {email} exists already")
    account = Account(
        email=email,
        name=name or "",
        role=role,
        password_hash=passwords.hash_password(password),
        password_changed_at=clock.now(),
    )
    db.session.add(account)
    db.session.flush()
    return account


def _check_usable(account: Account) -> None:
    if account.disabled_at is not None:
        raise AccountDisabled()
    if lockout.is_locked(account):
        raise AccountLocked()


def _count_failure(account: Account, ip: str | None, what: str) -> None:
    """One more failed password or code; the fifth within 15 minutes locks the account.
    Callers write it inside ``kept()``: it stays although the step fails."""
    if not lockout.count_failure(account):
        return
    until_support = lockout.until_support(account)
    audit.record("account.locked", account=account, outcome="failure", ip=ip, after=what,
                 until="support" if until_support else account.locked_until.isoformat())
    mailer.queue(account.email, "account_locked", None, name=account.name, email=account.email,
                 until=None if until_support else account.locked_until.strftime("%Y-%m-%d %H:%M"))


def check_password(email: str, password: str, *, ip: str | None) -> Account:
    """The account whose password this is, or InvalidCredentials (the same for an unknown
    address, at the same cost). A locked or disabled account is refused whatever the password."""
    if not throttles.allow("login-account", email, "RATELIMIT_LOGIN_PER_ACCOUNT"):
        with kept():
            audit.record("login.throttled", subject=email, outcome="failure", ip=ip)
        raise TooManyAttempts(_l("Too many sign-in attempts for this address. Wait a while and try again."))
    account = find_by_email(email)
    ok = passwords.verify_password(account.password_hash if account else None, password or "")
    if account is None:
        with kept():
            audit.record("login.password", subject=email, outcome="failure", ip=ip, why="unknown address")
        raise InvalidCredentials()
    if account.disabled_at is not None and not ok:
        # Only the right password learns that the account is disabled.
        with kept():
            audit.record("login.password", actor=account.id, account=account, outcome="failure", ip=ip,
                         why="disabled")
        raise InvalidCredentials()
    _check_usable(account)
    if not ok:
        with kept():
            _count_failure(account, ip, "password")
            audit.record("login.password", actor=account.id, account=account, outcome="failure", ip=ip)
        if lockout.is_locked(account):
            raise AccountLocked()
        raise InvalidCredentials()
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    audit.record("login.password", actor=account.id, account=account, ip=ip)
    return account


def check_totp(account: Account, code: str, *, ip: str | None) -> None:
    """Accept a current authenticator code once (±1 step); count a wrong one towards lockout."""
    _check_usable(account)
    secret = totp.unseal(account.totp_secret)
    counter = totp.matching_counter(secret, code, after=account.totp_last_counter)
    if counter is None:
        with kept():
            _count_failure(account, ip, "totp")
            audit.record("login.totp", actor=account.id, account=account, outcome="failure", ip=ip)
        if lockout.is_locked(account):
            raise AccountLocked()
        raise InvalidTotp()
    account.totp_last_counter = counter
    lockout.clear(account)
    audit.record("login.totp", actor=account.id, account=account, ip=ip)


def enrol_totp(account: Account, secret: str, code: str, *, ip: str | None) -> None:
    """Make ``secret`` the account's authenticator once the first code from it is right."""
    _check_usable(account)
    counter = totp.matching_counter(secret, code)
    if counter is None:
        with kept():
            audit.record("totp.enrol", actor=account.id, account=account, outcome="failure", ip=ip)
        raise InvalidTotp()
    account.totp_secret = totp.seal(secret)
    account.totp_enrolled_at = clock.now()
    account.totp_last_counter = counter
    lockout.clear(account)
    audit.record("totp.enrolled", actor=account.id, account=account, ip=ip)


def set_password(account: Account, password: str, confirmation: str | None, *, ip: str | None, actor: str | None = None,
                 keep_sid: str | None = None, locale: str | None = None) -> None:
    """A new password (policy checked): the other sessions end, refresh tokens are revoked,
    and a mail tells the person."""
    verdict = password_policy.check(password, confirmation, email=account.email, name=account.name)
    if not verdict.ok:
        raise PasswordRejected(verdict.failed())
    account.password_hash = passwords.hash_password(password)
    account.password_changed_at = clock.now()
    ended = sessions.end_all_for(account, except_sid=keep_sid, notify=True)
    revoked = tokens.revoke_for_account(account)
    audit.record("password.changed", actor=actor or account.id, account=account, ip=ip, sessions_ended=ended,
                 tokens_revoked=revoked)
    mailer.queue(account.email, "password_changed", locale, name=account.name, email=account.email,
                 when=clock.now().strftime("%Y-%m-%d %H:%M"))


def replace_totp(account: Account, secret: str, code: str, *, ip: str | None, locale: str | None = None) -> None:
    """Two-step verification set up again: the old secret stops working at once."""
    had_one = account.totp_enrolled
    enrol_totp(account, secret, code, ip=ip)
    if had_one:
        audit.record("totp.reset", actor=account.id, account=account, ip=ip)
        mailer.queue(account.email, "totp_reset", locale, name=account.name, email=account.email,
                     when=clock.now().strftime("%Y-%m-%d %H:%M"))


def verify_current_password(account: Account, password: str, *, ip: str | None) -> None:
    """For changes on the account page: the current password, counted like a sign-in."""
    _check_usable(account)
    if not passwords.verify_password(account.password_hash, password or ""):
        with kept():
            _count_failure(account, ip, "password")
            audit.record("password.check", actor=account.id, account=account, outcome="failure", ip=ip)
        raise InvalidCredentials()


def change_password(account: Account, current: str, totp_code: str, password: str, confirmation: str, *,
                    ip: str | None, keep_sid: str | None, locale: str | None) -> None:
    """A change on the account page: the current password and an authenticator code first."""
    verify_current_password(account, current, ip=ip)
    check_totp(account, totp_code, ip=ip)
    set_password(account, password, confirmation, ip=ip, keep_sid=keep_sid, locale=locale)


def unlock(account: Account, *, actor: str, ip: str | None, reason: str | None) -> None:
    lockout.unlock(account)
    audit.record("account.unlocked", actor=actor, account=account, ip=ip, reason=reason)
