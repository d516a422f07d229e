"""A person's recent sign-ins and security events, read from the audit trail in words
(the security centre): which actions are shown, what each is called, and how it signed in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import Account, AuditEvent, Client

PASSWORD = _l("Password")
AUTHENTICATOR = _l("Authenticator app")
EMAIL_CODE = _l("E-mail code")
PASSKEY = _l("Passkey")
# The `amr` values of a sign-in (RFC 8176) as the page names them.
AMR_METHODS = {"pwd": PASSWORD, "otp": AUTHENTICATOR, "hwk": PASSKEY, "swk": PASSKEY}
FROM_AMR = "amr"

# action -> (name when it succeeded, name when it failed, the method it is about). An action
# (or an outcome of it) not named here is not a sign-in or security event of the person and
# is not shown.
EVENTS: dict[str, tuple] = {
    "login.success": (_l("Signed in"), None, FROM_AMR),
    # A right password or code is a step of the sign-in that "Signed in" shows with its methods.
    "login.password": (None, _l("Sign-in attempt refused"), PASSWORD),
    "login.totp": (None, _l("Wrong authenticator code"), AUTHENTICATOR),
    "login.throttled": (None, _l("Too many sign-in attempts"), PASSWORD),
    "sign_in.locked": (None, _l("Signing in paused after wrong passwords"), PASSWORD),
    "account.locked": (None, _l("Account locked after failed attempts"), None),
    "account.unlocked": (_l("Account unlocked by support"), None, None),
    "email_code.sent": (_l("Verification code mailed"), None, EMAIL_CODE),
    "email_code.verified": (_l("Verification code accepted"), None, EMAIL_CODE),
    "email_code.failed": (None, _l("Wrong or expired verification code"), EMAIL_CODE),
    "password.changed": (_l("Password changed"), None, PASSWORD),
    "password.check": (None, _l("Wrong current password"), PASSWORD),
    "totp.enrolled": (_l("Authenticator app set up"), None, AUTHENTICATOR),
    "totp.enrol": (None, _l("Authenticator app not set up: wrong code"), AUTHENTICATOR),
    "totp.reset": (_l("Two-step verification set up again"), None, None),
    "login.passkey": (None, _l("Passkey not accepted"), PASSKEY),
    "passkey.clone_warning": (None, _l("Passkey refused: it may have been copied"), PASSKEY),
    "passkey.added": (_l("Passkey added"), None, PASSKEY),
    "passkey.add": (None, _l("Passkey not added"), PASSKEY),
    "passkey.removed": (_l("Passkey removed"), None, PASSKEY),
    "passkey.remove": (None, _l("Passkey not removed: it is the last second step"), PASSKEY),
    "support.reset_2fa": (_l("Two-step verification reset by support"), None, AUTHENTICATOR),
    "support.disable": (_l("Account disabled by support"), None, None),
    "support.enable": (_l("Account enabled by support"), None, None),
    "logout": (_l("Signed out"), None, None),
    "session.ended": (_l("Session ended in the security centre"), None, None),
    "consent.granted": (_l("Access given to an app"), None, None),
    "consent.denied": (_l("Access refused to an app"), None, None),
    "app.revoked": (_l("Access of an app withdrawn"), None, None),
    "authorization_code.reuse_detected": (None, _l("An app's sign-in code came back twice: its tokens were ended"), None),
    "refresh_token.reuse_detected": (None, _l("An app's refresh token came back twice: its tokens were ended"), None),
    "name.changed": (_l("Name changed"), None, None),
    "email.changed": (_l("E-mail address changed"), None, EMAIL_CODE),
    "email.change": (None, _l("E-mail address not changed: it belongs to another account"), EMAIL_CODE),
}


@dataclass(frozen=True)
class ShownEvent:
    at: dt.datetime
    ip: str | None
    name: str
    succeeded: bool
    method: str | None
    app: str | None  # the app it concerns, by name


@dataclass(frozen=True)
class EventsPage:
    events: list[ShownEvent]
    page: int
    has_older: bool


def _method(event: AuditEvent, method) -> str | None:
    if method != FROM_AMR:
        return str(method) if method is not None else None
    names = []
    for value in event.detail.get("amr") or ():
        name = AMR_METHODS.get(value)
        if name is not None and str(name) not in names:
            names.append(str(name))
    return " + ".join(names) or None


SHOWN = or_(
    and_(AuditEvent.action.in_([a for a, (named, _, _) in EVENTS.items() if named]), AuditEvent.outcome == "success"),
    and_(AuditEvent.action.in_([a for a, (_, named, _) in EVENTS.items() if named]), AuditEvent.outcome != "success"),
)


def _shown(event: AuditEvent, apps: dict[str, str]) -> ShownEvent:
    on_success, on_failure, method = EVENTS[event.action]
    succeeded = event.outcome == "success"
    name = on_success if succeeded else on_failure
    client_id = event.detail.get("client")
    return ShownEvent(at=event.at, ip=event.ip, name=str(name), succeeded=succeeded, method=_method(event, method),
                      app=apps.get(client_id, client_id) if client_id else None)


def page_for(account: Account, page: int = 1) -> EventsPage:
    """Page ``page`` (from 1, newest first) of the account's sign-ins and security events."""
    size = current_app.config["SECURITY_EVENTS_PER_PAGE"]
    page = max(1, page)
    rows = list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.account_id == account.id, SHOWN)
            .order_by(AuditEvent.id.desc())
            .offset((page - 1) * size)
            .limit(size + 1)
        )
    )
    client_ids = {e.detail.get("client") for e in rows if e.detail.get("client")}
    apps = dict(db.session.execute(select(Client.id, Client.name).where(Client.id.in_(client_ids))).all()) if client_ids else {}
    return EventsPage(events=[_shown(e, apps) for e in rows[:size]], page=page, has_older=len(rows) > size)
