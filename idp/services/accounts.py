"""Accounts: creation, lookup, password and authenticator checks, lockout, name and address."""

from __future__ import annotations


import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.exc import IntegrityError

from .. import clock, unit_of_work
from ..errors import (AccountDisabled, AccountLocked, CaptchaRequired, EmailInUse, FreshSignInRequired,
                      InvalidCredentials, InvalidEmail, InvalidName, InvalidTotp, PasskeyRefused, PasskeySignInPaused,
                      SignInLocked, TooManyAttempts, TotpAlreadyUsed, WrongCurrentPassword)
from ..extensions import db
from ..models import Account, Passkey
from ..unit_of_work import kept
from flask_babel import lazy_gettext as _l

from . import (audit, captcha, lockout, mailer, passkeys, passwords, password_policy, sessions, smart_lockout,
               throttles, tokens, totp)



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


# Built once: a statement made per call costs SQLAlchemy its construction and cache key each time.
_BY_EMAIL = select(Account).where(func.lower(Account.email) == bindparam("email"))


_SET_TOTP_COUNTER = (update(Account.__table__).where(Account.__table__.c.id == bindparam("account_id"))
                     .values(totp_last_counter=bindparam("counter")))


def find_by_email(email: str) -> Account | None:
    return db.session.scalar(_BY_EMAIL, {"email": email.lower()})


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
        raise AccountLocked(None if lockout.until_support(account) else account.locked_until)


def _count_failure(account: Account, ip: str | None, what: str) -> None:
    """One more wrong authenticator code (or current password of a signed-in session); the
    fifth within 15 minutes locks the account, the third lockout in a row until support
    unlocks it. Only failures after the right password count here: wrong sign-in passwords
    lock their source instead (smart_lockout). Callers write it inside ``kept()``."""
    if not lockout.count_failure(account):
        return
    until_support = lockout.until_support(account)
    audit.record("account.locked", account=account, outcome="failure", ip=ip, after=what,
                 until="support" if until_support else account.locked_until.isoformat())
    mailer.queue(account.email, "account_locked", None, name=account.name, email=account.email, cause=what,
                 until=None if until_support else account.locked_until)


def _source_locked(email: str, account: Account | None, source: smart_lockout.Source, until, ip: str | None) -> None:
    """A source just locked for an address: audited always, mailed to an account's owner."""
    audit.record("sign_in.locked", subject=email, account=account, outcome="failure", ip=ip,
                 cause="wrong passwords", source=source.kind, until=until.isoformat())
    if account is not None and account.disabled_at is None and throttles.allow(
            "lockout-mail", account.id, "RATELIMIT_LOCKOUT_MAIL"):
        mailer.queue(account.email, "sign_in_locked", None, name=account.name, email=account.email, until=until)


def password_step_standing(email: str, *, ip: str | None, device_id: str | None = None,
                           device_accounts=()) -> smart_lockout.Standing:
    """What the password page must show for this address from this browser (the CAPTCHA)."""
    # Only a browser familiar to some account can be a source of its own: without one, the
    # source is the network address whoever the address belongs to, and no lookup is needed.
    account = find_by_email(email) if email and device_id and device_accounts else None
    source = smart_lockout.source_of(account.id if account else None, device_id=device_id,
                                     device_accounts=device_accounts, ip=ip)
    return smart_lockout.standing(email or "", source)


def check_password(email: str, password: str, *, ip: str | None, device_id: str | None = None,
                   device_accounts=(), captcha_payload: str | None = None) -> Account:
    """The account whose password this is, or a refusal that is the same for an unknown
    address, at the same cost, until the right password is given: InvalidCredentials,
    CaptchaRequired for a source with several failures, SignInLocked for a locked source.
    Wrong passwords count against (address, source) only (smart_lockout): a familiar browser
    of the account is a source of its own. Only the right password learns that the account
    is disabled or locked."""
    account = find_by_email(email)
    source = smart_lockout.source_of(account.id if account else None, device_id=device_id,
                                     device_accounts=device_accounts, ip=ip)
    # The per-address limit stops a spread-out attack; a familiar browser is not subject to it.
    if not source.familiar and not throttles.allow("login-account", email, "RATELIMIT_LOGIN_PER_ACCOUNT"):
        with kept():
            audit.record("login.throttled", subject=email, outcome="failure", ip=ip)
        raise TooManyAttempts(_l("Too many sign-in attempts for this address. Wait a while and try again."))
    standing = smart_lockout.standing(email, source)
    if standing.locked_until is not None:
        with kept():
            audit.record("login.password", subject=email, account=account, outcome="failure", ip=ip,
                         why="source locked", source=source.kind)
        raise SignInLocked(standing.locked_until)
    if standing.needs_captcha and not captcha.verify(captcha_payload or ""):
        with kept():
            audit.record("login.password", subject=email, account=account, outcome="failure", ip=ip,
                         why="captcha", source=source.kind)
        raise CaptchaRequired()
    ok = passwords.verify_password(account.password_hash if account else None, password or "")
    if not ok:
        why = "unknown address" if account is None else ("disabled" if account.disabled_at is not None else None)
        with kept():
            locked_until = smart_lockout.count_failure(email, source)
            audit.record("login.password", actor=account.id if account else "anonymous", subject=email,
                         account=account, outcome="failure", ip=ip, why=why, source=source.kind)
            if locked_until is not None:
                _source_locked(email, account, source, locked_until, ip)
        if locked_until is not None:
            raise SignInLocked(locked_until)
        raise InvalidCredentials()
    _check_usable(account)
    smart_lockout.succeeded(email, source, standing)
    if passwords.needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    audit.record("login.password", actor=account.id, account=account, ip=ip, source=source.kind)
    return account


_ACCOUNTS = Account.__table__
# What the authenticator step's page shows of an account, in one statement and without an ORM
# object: a page that only shows loads no account.
_SECOND_STEP = select(
    _ACCOUNTS.c.email, _ACCOUNTS.c.totp_secret, _ACCOUNTS.c.totp_enrolled_at,
    select(func.count(Passkey.id)).where(Passkey.account_id == _ACCOUNTS.c.id).scalar_subquery().label("passkeys"),
).where(_ACCOUNTS.c.id == bindparam("account_id"))


def second_step_facts(account_id: str) -> dict | None:
    """The address, whether an authenticator app is set up (as ``Account.totp_enrolled``) and
    whether there are passkeys, of the account with this id (None: no such account)."""
    row = unit_of_work.execute(_SECOND_STEP, {"account_id": account_id}).mapping()
    if row is None:
        return None
    totp_enrolled = row["totp_secret"] is not None and row["totp_enrolled_at"] is not None
    return {"account_email": row["email"], "totp_enrolled": totp_enrolled, "has_passkeys": (row["passkeys"] or 0) > 0}


def has_second_factor(account: Account) -> bool:
    """An authenticator app or a passkey: what the sign-in asks after the password."""
    return account.totp_enrolled or passkeys.count(account) > 0


def check_totp(account: Account, code: str, *, ip: str | None) -> None:
    """Accept a current authenticator code once (±1 step); count a wrong one towards lockout.
    A right code of a step used already is refused as such: the person waits for the next one.
    An account without an authenticator app (passkeys only) has no right code."""
    _check_usable(account)
    secret = totp.unseal(account.totp_secret) if account.totp_enrolled else None
    counter = totp.matching_counter(secret, code, after=account.totp_last_counter) if secret else None
    if counter is None:
        used = totp.used_already(secret, code, last=account.totp_last_counter)
        with kept():
            _count_failure(account, ip, "totp")
            audit.record("login.totp", actor=account.id, account=account, outcome="failure", ip=ip,
                         why="code used already" if used else None)
        _check_usable(account)
        raise TotpAlreadyUsed() if used else InvalidTotp()
    # One UPDATE of the column now, rather than the unit of work's flush of the changed object.
    unit_of_work.execute(_SET_TOTP_COUNTER, {"account_id": account.id, "counter": counter})
    set_committed_value(account, "totp_last_counter", counter)
    if account.failed_attempts or account.first_failed_at is not None or account.lockouts:
        lockout.clear(account)
    audit.record("login.totp", actor=account.id, account=account, ip=ip)


def check_passkey(account: Account, credential: str, challenge: str | None, *, ip: str | None) -> str:
    """A passkey of this account as the second step after the password; its `amr` value
    (hwk or swk). A refused one counts towards the account's lockout as a wrong code does."""
    _check_usable(account)
    try:
        passkey = passkeys.verify_assertion(credential, challenge, account=account)
    except passkeys.Rejected as rejected:
        with kept():
            _count_failure(account, ip, "passkey")
            passkeys.record_rejection(rejected, ip=ip, purpose="second factor")
        _check_usable(account)
        raise PasskeyRefused() from None
    lockout.clear(account)
    audit.record("login.passkey", actor=account.id, account=account, ip=ip, passkey=passkey.id,
                 purpose="second factor")
    return passkeys.amr_of(passkey)


# The smart lockout's address for passkey sign-ins, which name no address until they verify
# (not an e-mail address, so it never shares a count with one).
PASSKEY_SIGN_IN = "passkey sign-in"


def sign_in_with_passkey(credential: str, challenge: str | None, *, ip: str | None) -> tuple[Account, str]:
    """A sign-in with a passkey alone (user verification makes it two factors): the account
    and the `amr` value (hwk or swk). Failed assertions are counted per network address like
    wrong passwords (smart lockout), with one answer whatever failed, so the answers tell
    nobody which passkeys exist; the source is paused, never an account."""
    source = smart_lockout.source_of(None, device_id=None, device_accounts=(), ip=ip)
    standing = smart_lockout.standing(PASSKEY_SIGN_IN, source)
    if standing.locked_until is not None:
        with kept():
            audit.record("login.passkey", outcome="failure", ip=ip, why="source paused", purpose="sign-in")
        raise PasskeySignInPaused(standing.locked_until)
    try:
        passkey = passkeys.verify_assertion(credential, challenge)
    except passkeys.Rejected as rejected:
        with kept():
            locked_until = smart_lockout.count_failure(PASSKEY_SIGN_IN, source)
            passkeys.record_rejection(rejected, ip=ip, purpose="sign-in")
            if locked_until is not None:
                audit.record("sign_in.locked", subject=PASSKEY_SIGN_IN, outcome="failure", ip=ip,
                             cause="failed passkey sign-ins", source=source.kind, until=locked_until.isoformat())
        if locked_until is not None:
            raise PasskeySignInPaused(locked_until) from None
        raise PasskeyRefused() from None
    account = passkey.account
    _check_usable(account)
    lockout.clear(account)
    audit.record("login.passkey", actor=account.id, account=account, ip=ip, passkey=passkey.id, purpose="sign-in")
    return account, passkeys.amr_of(passkey)


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
    """A new password (policy checked, and not the current one): the other sessions end,
    refresh tokens are revoked, and a mail tells the person."""
    verdict = password_policy.check(password, confirmation, email=account.email, name=account.name)
    # Only a password the policy allows is compared with the current one (a slow hash).
    if verdict.ok and account.password_hash and passwords.verify_password(account.password_hash, password):
        verdict.rules["not_current"] = False
    if not verdict.ok:
        raise verdict.refusal()
    account.password_hash = passwords.hash_password(password)
    account.password_changed_at = clock.now()
    ended = sessions.end_all_for(account, except_sid=keep_sid, notify=True)
    revoked = tokens.revoke_for_account(account)
    audit.record("password.changed", actor=actor or account.id, account=account, ip=ip, sessions_ended=ended,
                 tokens_revoked=revoked)
    mailer.queue(account.email, "password_changed", locale, name=account.name, email=account.email, when=clock.now())


def clear_second_factors(account: Account) -> int:
    """The authenticator secret and every passkey stop working at once (a reset of two-step
    verification); the number of passkeys removed. The caller audits and mails."""
    account.totp_secret = None
    account.totp_enrolled_at = None
    account.totp_last_counter = 0
    return passkeys.remove_all(account)


def _set_up_again(account: Account, *, had_one: bool, passkeys_removed: int, ip: str | None,
                  locale: str | None) -> None:
    if had_one:
        audit.record("totp.reset", actor=account.id, account=account, ip=ip, passkeys_removed=passkeys_removed)
        mailer.queue(account.email, "totp_reset", locale, name=account.name, email=account.email,
                     when=clock.now(), passkeys_removed=passkeys_removed)


def replace_totp(account: Account, secret: str, code: str, *, ip: str | None, locale: str | None = None) -> None:
    """Two-step verification set up again with an authenticator app: the old secret and
    every passkey stop working at once."""
    had_one = has_second_factor(account)
    enrol_totp(account, secret, code, ip=ip)
    removed = passkeys.remove_all(account)
    _set_up_again(account, had_one=had_one, passkeys_removed=removed, ip=ip, locale=locale)


def enrol_passkey(account: Account, credential: str, challenge: str | None, *, name: str | None, ip: str | None,
                  locale: str | None = None) -> str:
    """Two-step verification set up with a passkey instead of an authenticator app (the
    first sign-in, or after a reset): what was set up before stops working at once. The
    passkey's `amr` value."""
    _check_usable(account)
    name = passkeys.check_name(name)
    new = passkeys.verify_registration(account, credential, challenge, ip=ip)
    had_one = has_second_factor(account)
    removed = clear_second_factors(account)
    passkey = passkeys.store(account, new, name=name, ip=ip, locale=locale)
    lockout.clear(account)
    _set_up_again(account, had_one=had_one, passkeys_removed=removed, ip=ip, locale=locale)
    return passkeys.amr_of(passkey)


def verify_current_password(account: Account, password: str, *, ip: str | None) -> None:
    """For changes on the account page: the current password, counted like a sign-in."""
    _check_usable(account)
    if not passwords.verify_password(account.password_hash, password or ""):
        with kept():
            _count_failure(account, ip, "password")
            audit.record("password.check", actor=account.id, account=account, outcome="failure", ip=ip)
        raise WrongCurrentPassword()


def change_password(account: Account, current: str, totp_code: str, password: str, confirmation: str, *,
                    ip: str | None, session, locale: str | None) -> None:
    """A change on the account page in ``session``: the current password and an
    authenticator code first. An account whose second step is a passkey (which this form
    cannot ask for) needs a sign-in of the last PASSKEY_FRESH_LOGIN seconds instead."""
    verify_current_password(account, current, ip=ip)
    if account.totp_enrolled:
        check_totp(account, totp_code, ip=ip)
    else:
        fresh = current_app.config["PASSKEY_FRESH_LOGIN"]
        if not sessions.signed_in_within(session, fresh):
            raise FreshSignInRequired(fresh // 60)
    set_password(account, password, confirmation, ip=ip, keep_sid=session.id, locale=locale)


def status(account: Account) -> str:
    """disabled, locked (the account itself, or signing in to it from some source) or active."""
    state = account.status(clock.now())
    if state == "active" and smart_lockout.locked_sources(account.email):
        return "locked"
    return state


def unlock(account: Account, *, actor: str, ip: str | None, reason: str | None) -> None:
    """Support's unlock: the account's own lock and every locked source of its address."""
    lockout.unlock(account)
    sources = smart_lockout.release(account.email)
    audit.record("account.unlocked", actor=actor, account=account, ip=ip, reason=reason, sources_released=sources)


NAME_MAX_LENGTH = 200


def change_name(account: Account, name: str, *, ip: str | None) -> None:
    """The person's new name (the `name` claim from the next token on). Runs of white space
    become one space; control and format characters are refused."""
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX_LENGTH or any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidName()
    if name == account.name:
        return
    old, account.name = account.name, name
    audit.record("name.changed", actor=account.id, account=account, ip=ip, old=old, new=name)


def change_email(account: Account, new_email: str, *, ip: str | None, locale: str | None) -> None:
    """Make ``new_email`` (its control proven with a mailed code) the account's address: the
    `email` claim from the next token on; the old address gets a notice. An address that
    another account has (or takes in the meantime) is refused, and the refusal is kept."""
    old = account.email
    if find_by_email(new_email) is not None:
        _email_in_use(account, new_email, ip)
    account.email = new_email
    account.email_verified = True
    try:
        db.session.flush()
    except IntegrityError:
        # Another account took the address between the check and this write.
        db.session.rollback()
        _email_in_use(account, new_email, ip)
    audit.record("email.changed", actor=account.id, account=account, ip=ip, old=old, new=new_email)
    mailer.queue(old, "email_changed", locale, name=account.name, old_email=old, new_email=new_email,
                 when=clock.now())


def _email_in_use(account: Account, new_email: str, ip: str | None):
    with kept():
        audit.record("email.change", actor=account.id, account=account, outcome="failure", ip=ip,
                     why="address in use", new=new_email)
    raise EmailInUse()
