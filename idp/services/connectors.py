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
from ..models import Account, Client, ConnectorUser
from ..unit_of_work import kept
from . import administrations, audit, mailer, password_policy, passwords, smart_lockout, throttles, tokens

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


def policy_identity(connector: ConnectorUser) -> dict[str, str]:
    """What a connector user's password must not contain, as password_policy.check takes it:
    its full username and its administration's name."""
    return {"email": f"{connector.username}@{domain()}", "name": connector.administration.name}


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
    connector.password_hash = password_policy.hash_if_allowed(password, confirmation, **policy_identity(connector))
    connector.password_set_at = clock.now()
    smart_lockout.release(_lock_address(connector.username))
    revoked = tokens.revoke_for_connector(connector)
    audit.record("connector.password_set", subject=connector.username, ip=ip, tokens_revoked=revoked,
                 administration=connector.administration_id)
    owner = owner_of(connector)
    if owner is not None:
        mailer.queue(owner.email, "connector_password_set", locale, name=owner.name, username=connector.username,
                     administration=connector.administration.name, when=clock.now())


def _lock_address(username: str) -> str:
    """The name a connector user's tries are counted under (smart_lockout), known or not."""
    return "connector:" + username


def authenticate(username: str, password: str, *, client_id: str, ip: str | None) -> ConnectorUser | None:
    """The connector user these credentials belong to, or None. Only bare usernames (no
    @domain) are taken. Wrong passwords lock the source they come from (this client from this
    address, smart_lockout) for growing times, never until support: these tries are
    unauthenticated, and anyone could otherwise shut a bank's integration out. Unknown
    usernames are counted alike, and every refusal is the same. A refusal is kept at once
    (``kept()``); a success is committed with the request."""
    typed = (username if isinstance(username, str) else "").strip().upper()[:64]
    connector = find(typed) if USERNAME.match(typed) else None
    address, source = _lock_address(typed), smart_lockout.client_source(client_id, ip)
    standing = smart_lockout.standing(address, source)
    if standing.locked_until is not None:
        with kept():
            audit.record("connector.login", subject=typed, outcome="failure", ip=ip, why="source locked",
                         client=client_id)
        return None
    ok = passwords.verify_password(connector.password_hash if connector else None, password or "")
    if connector is None or not ok:
        with kept():
            locked_until = smart_lockout.count_failure(address, source)
            audit.record("connector.login", subject=typed, outcome="failure", ip=ip,
                         why=None if connector else "unknown", client=client_id)
            if locked_until is not None:
                _source_locked(connector, typed, client_id, locked_until, ip)
        return None
    smart_lockout.succeeded(address, source)
    audit.record("connector.login", subject=connector.username, ip=ip, client=client_id)
    return connector


def _source_locked(connector: ConnectorUser | None, username: str, client_id: str, until, ip: str | None) -> None:
    """Audited always; the administration's owner is told (at most a few mails a day)."""
    audit.record("connector.locked", subject=username, outcome="failure", ip=ip, cause="wrong passwords",
                 client=client_id, until=until.isoformat())
    owner = owner_of(connector) if connector is not None else None
    # fail_open: the token endpoint keeps working while Redis is away (web/unavailable.py).
    if owner is not None and throttles.allow("lockout-mail", "connector:" + connector.username,
                                             "RATELIMIT_LOCKOUT_MAIL", fail_open=True):
        client = db.session.get(Client, client_id)
        mailer.queue(owner.email, "connector_locked", None, name=owner.name, username=connector.username,
                     administration=connector.administration.name, client=client.name if client else client_id,
                     ip=ip or "", until=until)


def is_locked(connector: ConnectorUser) -> bool:
    """Whether tries for this connector user are refused from some source now."""
    return smart_lockout.locked_sources(_lock_address(connector.username)) > 0


def unlock(connector: ConnectorUser, *, actor: str, ip: str | None, reason: str | None) -> None:
    """Support's unlock: every locked source of this connector user starts again."""
    sources = smart_lockout.release(_lock_address(connector.username))
    audit.record("connector.unlocked", actor=actor, subject=connector.username, ip=ip, reason=reason,
                 sources_released=sources)
