"""F7 connector users (koppelgebruikers): password resets through the portal, and the
password grant that banks and scanning services use."""

from __future__ import annotations

import re

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from .. import clock
from ..errors import DomainError
from ..extensions import db
from ..models import Account, ConnectorUser
from ..unit_of_work import kept
from . import administrations, audit, lockout, mailer, password_policy, passwords, tokens

USERNAME = re.compile(r"^[A-Z0-9]{4,40}$")


class ConnectorResetRefused(DomainError):
    """The one answer for every failed reset request, so that it reveals nothing."""

    status = 400
    public = _l(
        "We could not handle this request. Possible causes: the username is not typed exactly right "
        "(copy it from your account page instead of typing it); a password reset was already requested "
        "for this user in the last 24 hours; the details of the administration are not complete. "
        "Contact support if you cannot solve it."
    )


def domain() -> str:
    return current_app.config["CONNECTOR_DOMAIN"]


def normalize(value: str) -> str | None:
    """The bare username from what someone typed (with or without @domain), or None."""
    value = (value or "").strip()
    if "@" in value:
        value, _, suffix = value.partition("@")
        if suffix.lower() != domain().lower():
            return None
    value = value.upper()
    return value if USERNAME.match(value) else None


def find(username: str | None) -> ConnectorUser | None:
    if not username:
        return None
    return db.session.scalar(select(ConnectorUser).where(ConnectorUser.username == username))


def for_administration(administration_id: str) -> ConnectorUser | None:
    return db.session.scalar(select(ConnectorUser).where(ConnectorUser.administration_id == administration_id))


def owner_of(connector: ConnectorUser) -> Account | None:
    found = [a for a in administrations.owners(connector.administration) if a.disabled_at is None and a.email]
    return found[0] if found else None


def reset_refusal(connector: ConnectorUser | None) -> str | None:
    """Why a reset cannot go ahead (for the audit trail only), or None."""
    if connector is None:
        return "unknown username"
    if owner_of(connector) is None:
        return "no owner address"
    last = connector.last_reset_at
    if last is not None and (clock.now() - last).total_seconds() < current_app.config["CONNECTOR_RESET_INTERVAL"]:
        return "24-hour limit"
    return None


def record_refusal(username: str | None, *, why: str, ip: str | None) -> None:
    """The audit entry of a refused reset request; kept although the step fails."""
    with kept():
        audit.record("connector.reset_refused", subject=username, outcome="failure", ip=ip, why=why)


def note_reset_requested(connector: ConnectorUser, *, link: str, ip: str | None, locale: str | None) -> None:
    owner = owner_of(connector)
    connector.last_reset_at = clock.now()
    mailer.queue(owner.email, "connector_reset", locale, name=owner.name, username=connector.username,
                 administration=connector.administration.name, url=link,
                 minutes=current_app.config["CONNECTOR_FLOW_LIFETIME"] // 60)
    audit.record("connector.reset_requested", subject=connector.username, ip=ip, owner=owner.id,
                 administration=connector.administration_id)


def set_password(connector: ConnectorUser, password: str, confirmation: str, *, ip: str | None,
                 locale: str | None) -> None:
    """A new password (the account policy): earlier tokens are revoked, the owner is told."""
    verdict = password_policy.check(password, confirmation, email=f"{connector.username}@{domain()}",
                                    name=connector.administration.name)
    if not verdict.ok:
        raise verdict.refusal()
    connector.password_hash = passwords.hash_password(password)
    connector.password_set_at = clock.now()
    lockout.unlock(connector)
    revoked = tokens.revoke_for_connector(connector)
    audit.record("connector.password_set", subject=connector.username, ip=ip, tokens_revoked=revoked,
                 administration=connector.administration_id)
    owner = owner_of(connector)
    if owner is not None:
        mailer.queue(owner.email, "connector_password_set", locale, name=owner.name, username=connector.username,
                     administration=connector.administration.name, when=clock.now())


def authenticate(username: str, password: str, *, ip: str | None) -> ConnectorUser | None:
    """The connector user these credentials belong to, or None; wrong passwords count towards
    a lockout with the same rules as accounts. Only bare usernames (no @domain) are taken.
    A refusal is kept at once (``kept()``): failed tries and lockouts count although the token
    request that brought them fails; a success is committed with the request."""
    connector = find(username.upper()) if isinstance(username, str) and USERNAME.match(username.upper()) else None
    ok = passwords.verify_password(connector.password_hash if connector else None, password or "")
    if connector is None:
        with kept():
            audit.record("connector.login", subject=(username or "")[:64], outcome="failure", ip=ip, why="unknown")
        return None
    if lockout.is_locked(connector):
        with kept():
            audit.record("connector.login", subject=connector.username, outcome="failure", ip=ip, why="locked")
        return None
    if not ok:
        with kept():
            if lockout.count_failure(connector):
                audit.record("connector.locked", subject=connector.username, outcome="failure", ip=ip)
            audit.record("connector.login", subject=connector.username, outcome="failure", ip=ip)
        return None
    lockout.clear(connector)
    audit.record("connector.login", subject=connector.username, ip=ip)
    return connector


def unlock(connector: ConnectorUser, *, actor: str, ip: str | None, reason: str | None) -> None:
    lockout.unlock(connector)
    audit.record("connector.unlocked", actor=actor, subject=connector.username, ip=ip, reason=reason)
