"""A person's recent sign-ins and security events, read from the audit trail in words
(the security centre): which actions are shown and how the person signed in; their names are
the audit trail's one table (event_names)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import Account, AuditEvent, Client
from . import event_names

PASSWORD = _l("Password")
AUTHENTICATOR = _l("Authenticator app")
EMAIL_CODE = _l("E-mail code")
PASSKEY = _l("Passkey")
# The `amr` values of a sign-in (RFC 8176) as the page names them.
AMR_METHODS = {"pwd": PASSWORD, "otp": AUTHENTICATOR, "hwk": PASSKEY, "swk": PASSKEY}
FROM_AMR = "amr"

SUCCESS, FAILURE = "success", "failure"

# The person's own sign-ins and security events: action -> (the outcomes shown, the method it
# is about). Names come from the audit trail's one table (event_names). An action or outcome
# not listed is not shown: a right password or code is a step of the sign-in that "Signed in"
# shows with its methods, and staff-side or system events are not the person's.
SHOWN_EVENTS: dict[str, tuple[frozenset, object]] = {
    "login.success": (frozenset({SUCCESS}), FROM_AMR),
    "login.password": (frozenset({FAILURE}), PASSWORD),
    "login.totp": (frozenset({FAILURE}), AUTHENTICATOR),
    "login.throttled": (frozenset({FAILURE}), PASSWORD),
    "login.passkey": (frozenset({FAILURE}), PASSKEY),
    "sign_in.locked": (frozenset({FAILURE}), PASSWORD),
    "account.locked": (frozenset({FAILURE}), None),
    "account.unlocked": (frozenset({SUCCESS}), None),
    "email_code.sent": (frozenset({SUCCESS}), EMAIL_CODE),
    "email_code.verified": (frozenset({SUCCESS}), EMAIL_CODE),
    "email_code.failed": (frozenset({FAILURE}), EMAIL_CODE),
    "password.changed": (frozenset({SUCCESS}), PASSWORD),
    "password.check": (frozenset({FAILURE}), PASSWORD),
    "totp.enrolled": (frozenset({SUCCESS}), AUTHENTICATOR),
    "totp.enrol": (frozenset({FAILURE}), AUTHENTICATOR),
    "totp.reset": (frozenset({SUCCESS}), None),
    "passkey.clone_warning": (frozenset({FAILURE}), PASSKEY),
    "passkey.added": (frozenset({SUCCESS}), PASSKEY),
    "passkey.add": (frozenset({FAILURE}), PASSKEY),
    "passkey.removed": (frozenset({SUCCESS}), PASSKEY),
    "passkey.remove": (frozenset({FAILURE}), PASSKEY),
    "support.reset_2fa": (frozenset({SUCCESS}), AUTHENTICATOR),
    "support.disable": (frozenset({SUCCESS}), None),
    "support.enable": (frozenset({SUCCESS}), None),
    "logout": (frozenset({SUCCESS}), None),
    "session.ended": (frozenset({SUCCESS}), None),
    "consent.granted": (frozenset({SUCCESS}), None),
    "consent.denied": (frozenset({SUCCESS}), None),
    "app.revoked": (frozenset({SUCCESS}), None),
    "authorization_code.reuse_detected": (frozenset({FAILURE}), None),
    "refresh_token.reuse_detected": (frozenset({FAILURE}), None),
    "name.changed": (frozenset({SUCCESS}), None),
    "email.changed": (frozenset({SUCCESS}), EMAIL_CODE),
    "email.change": (frozenset({FAILURE}), EMAIL_CODE),
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
    and_(AuditEvent.action.in_([a for a, (shown, _) in SHOWN_EVENTS.items() if SUCCESS in shown]),
         AuditEvent.outcome == SUCCESS),
    and_(AuditEvent.action.in_([a for a, (shown, _) in SHOWN_EVENTS.items() if FAILURE in shown]),
         AuditEvent.outcome != SUCCESS),
)


def _shown(event: AuditEvent, apps: dict[str, str]) -> ShownEvent:
    _, method = SHOWN_EVENTS[event.action]
    succeeded = event.outcome == SUCCESS
    client_id = event.detail.get("client")
    return ShownEvent(at=event.at, ip=event.ip, name=event_names.describe(event.action, event.outcome),
                      succeeded=succeeded, method=_method(event, method),
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
