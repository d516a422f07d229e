"""Six-digit codes mailed to prove control of an address: 10 minutes, 5 tries, single use."""

from __future__ import annotations

import datetime as dt
import math
import secrets

from flask import current_app
from sqlalchemy import func, select, update

from .. import clock
from ..errors import InvalidEmailCode, ResendTooSoon, TooManyAttempts
from ..extensions import db
from ..models import Account, EmailCode
from ..unit_of_work import kept
from . import audit, crypto, mailer

PURPOSE = "email-code"


def _hash(code: str) -> str:
    return crypto.keyed_hash(code, PURPOSE)


def issue_email_code(
    email: str,
    purpose: str,
    *,
    account: Account | None = None,
    flow_id: str | None,
    locale: str | None,
    ip: str | None,
    name: str = "",
    mail: str = "email_code",
    **mail_context,
) -> None:
    """Create a code for ``email``, queue its mail (``mail``: the sign-in's code mail, or one
    that says what else the code is for), and supersede the earlier codes.

    Resends are throttled: one per EMAIL_CODE_RESEND_INTERVAL seconds and at most
    EMAIL_CODE_MAX_PER_HOUR per address and purpose.
    """
    code = f"{secrets.randbelow(10**6):06d}"
    _issue(email, purpose, code, account=account, flow_id=flow_id)
    minutes = current_app.config["EMAIL_CODE_LIFETIME"] // 60
    mailer.queue(email.lower(), mail, locale, code=code, minutes=minutes, purpose=purpose,
                 name=name or (account.name if account else ""), email=email.lower(), **mail_context)
    audit.record("email_code.sent", actor=account.id if account else "anonymous", subject=email.lower(),
                 account=account, ip=ip, purpose=purpose)


def issue_decoy_code(email: str, purpose: str, *, flow_id: str, locale: str | None, ip: str | None) -> None:
    """What ``issue_email_code`` does, for an address that gets no mail (no usable account):
    the same throttle, the same row bound to the flow, so the code step counts tries and
    answers as it does for a real code. Its hash is of a value no six-digit code has, so no
    code is ever accepted; nothing is mailed (the mail is rendered, for the same cost)."""
    _issue(email, purpose, "decoy:" + secrets.token_hex(16), account=None, flow_id=flow_id)
    render_for_timing(locale, purpose)
    audit.record("email_code.withheld", subject=email.lower(), ip=ip, purpose=purpose, why="no usable account")


def _issue(email: str, purpose: str, code: str, *, account: Account | None, flow_id: str | None) -> None:
    cfg = current_app.config
    now = clock.now()
    email = email.lower()
    last = db.session.scalar(
        select(func.max(EmailCode.created_at)).where(EmailCode.email == email, EmailCode.purpose == purpose)
    )
    if last is not None and (now - last).total_seconds() < cfg["EMAIL_CODE_RESEND_INTERVAL"]:
        raise ResendTooSoon(_seconds_until(last + dt.timedelta(seconds=cfg["EMAIL_CODE_RESEND_INTERVAL"]), now))
    hour_ago = now - dt.timedelta(hours=1)
    sent_last_hour, oldest = db.session.execute(
        select(func.count(EmailCode.id), func.min(EmailCode.created_at)).where(
            EmailCode.email == email,
            EmailCode.purpose == purpose,
            EmailCode.created_at > hour_ago,
        )
    ).one()
    if sent_last_hour >= cfg["EMAIL_CODE_MAX_PER_HOUR"]:
        # One more may go when the oldest of the last hour's codes drops out of the hour.
        raise ResendTooSoon(_seconds_until(oldest + dt.timedelta(hours=1), now))
    db.session.execute(
        update(EmailCode)
        .where(EmailCode.email == email, EmailCode.purpose == purpose, EmailCode.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    db.session.add(
        EmailCode(
            email=email,
            account_id=account.id if account else None,
            flow_id=flow_id,
            purpose=purpose,
            code_hash=_hash(code),
            expires_at=now + dt.timedelta(seconds=cfg["EMAIL_CODE_LIFETIME"]),
        )
    )


def _seconds_until(moment: dt.datetime, now: dt.datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def render_for_timing(locale: str | None, purpose: str = "") -> None:
    """The work of a code mail without sending it, so an unknown address answers as fast."""
    mailer.render("email_code", locale, code="000000", minutes=current_app.config["EMAIL_CODE_LIFETIME"] // 60,
                  purpose=purpose, name="", email="")


def verify_email_code(email: str, purpose: str, code: str, *, flow_id: str | None, ip: str | None,
                      account: Account | None = None) -> None:
    """Accept the current code of this flow once; count a wrong try against it. Raises on refusal.

    A refusal and its counted try are kept in their own transaction (``kept()``).
    """
    cfg = current_app.config
    now = clock.now()
    email = (email or "").lower()
    current = db.session.scalar(
        select(EmailCode)
        .where(
            EmailCode.email == email,
            EmailCode.purpose == purpose,
            EmailCode.flow_id == flow_id,
            EmailCode.superseded_at.is_(None),
        )
        .order_by(EmailCode.id.desc())
        .limit(1)
    )
    actor = account.id if account else "anonymous"
    code = (code or "").strip().replace(" ", "")
    if current is None or current.used_at is not None or current.expires_at <= now:
        with kept():
            audit.record("email_code.failed", actor=actor, subject=email, account=account, outcome="failure", ip=ip,
                         why="expired or used")
        raise InvalidEmailCode()
    if current.attempts >= cfg["EMAIL_CODE_MAX_ATTEMPTS"]:
        with kept():
            audit.record("email_code.failed", actor=actor, subject=email, account=account, outcome="failure", ip=ip,
                         why="too many tries")
        raise TooManyAttempts()
    if not (len(code) == 6 and code.isdigit() and crypto.keyed_hash_matches(current.code_hash, code, PURPOSE)):
        with kept():
            current.attempts += 1
            audit.record("email_code.failed", actor=actor, subject=email, account=account, outcome="failure", ip=ip,
                         why="wrong code")
        if current.attempts >= cfg["EMAIL_CODE_MAX_ATTEMPTS"]:
            raise TooManyAttempts()
        raise InvalidEmailCode()
    current.used_at = now
    audit.record("email_code.verified", actor=actor, subject=email, account=account, ip=ip, purpose=purpose)
