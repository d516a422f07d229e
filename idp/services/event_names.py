"""The audit trail as people read it: one table of every action with its kind and its name per
outcome, and who did it. The support console shows events with it, and so can any page that
lists a person's events (a security centre); an action missing here shows as its code."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

# The kinds an event list can be filtered by, in the order a filter offers them.
KINDS = {
    "sign_in": _l("Sign-in"),
    "locks": _l("Locks and unlocks"),
    "account": _l("Changes to the account"),
    "access": _l("Access to administrations"),
    "support": _l("Support actions"),
    "invitations": _l("Invitations"),
    "connectors": _l("Connector users"),
    "apps": _l("Applications"),
    "system": _l("System"),
}

OUTCOMES = {"success": _l("Succeeded"), "failure": _l("Refused")}


@dataclass(frozen=True)
class EventName:
    kind: str
    success: object  # the name when it went through (a lazy text), or None if it never does
    failure: object = None  # the name when it was refused, or None if it never is


EVENTS: dict[str, EventName] = {
    # Sign-in
    "login.password": EventName("sign_in", _l("Sign-in: password"), _l("Sign-in: wrong password")),
    "login.totp": EventName("sign_in", _l("Sign-in: authenticator code"), _l("Sign-in: wrong authenticator code")),
    "login.throttled": EventName("sign_in", None, _l("Sign-in: too many attempts for this address")),
    "login.passkey": EventName("sign_in", _l("Sign-in: passkey"), _l("Sign-in: passkey not accepted")),
    "passkey.clone_warning": EventName("sign_in", None, _l("Passkey refused: it may have been copied")),
    "login.success": EventName("sign_in", _l("Signed in")),
    "logout": EventName("sign_in", _l("Signed out")),
    "session.ended": EventName("sign_in", _l("Session ended in the security centre")),
    "email_code.sent": EventName("sign_in", _l("E-mail code sent")),
    "email_code.withheld": EventName("sign_in", _l("E-mail code not sent: no usable account")),
    "email_code.verified": EventName("sign_in", _l("E-mail code confirmed")),
    "email_code.failed": EventName("sign_in", None, _l("E-mail code refused")),
    # Locks and unlocks
    "sign_in.locked": EventName("locks", None, _l("Sign-in paused after wrong passwords")),
    "account.locked": EventName("locks", None, _l("Account locked after failed attempts")),
    "account.unlocked": EventName("locks", _l("Account unlocked")),
    "connector.locked": EventName("locks", None, _l("Connector user locked after wrong passwords")),
    "connector.unlocked": EventName("locks", _l("Connector user unlocked")),
    # Changes to the account
    "account.created": EventName("account", _l("Account created")),
    "password.changed": EventName("account", _l("Password changed")),
    "password.check": EventName("account", None, _l("Account page: wrong current password")),
    "totp.enrol": EventName("account", None, _l("Authenticator setup: wrong code")),
    "totp.enrolled": EventName("account", _l("Authenticator app set up")),
    "totp.reset": EventName("account", _l("Two-step verification set up again")),
    "passkey.added": EventName("account", _l("Passkey added"), _l("Passkey not added")),
    "passkey.add": EventName("account", None, _l("Passkey not added")),
    "passkey.removed": EventName("account", _l("Passkey removed")),
    "passkey.remove": EventName("account", None, _l("Passkey not removed: it is the last second step")),
    "name.changed": EventName("account", _l("Name changed")),
    "email.changed": EventName("account", _l("E-mail address changed")),
    "email.change": EventName("account", None, _l("E-mail address not changed: it belongs to another account")),
    "signup.completed": EventName("account", _l("Trial sign-up completed")),
    # Access to administrations
    "access.granted": EventName("access", _l("Access to an administration given")),
    "access.revoked": EventName("access", _l("Access to an administration removed")),
    "firm.linked": EventName("access", _l("Accountancy firm linked to an administration")),
    "firm.unlinked": EventName("access", _l("Accountancy firm unlinked from an administration")),
    # Support actions
    "support.reset_2fa": EventName("support", _l("Two-step verification reset by support")),
    "support.disable": EventName("support", _l("Account disabled by support")),
    "support.enable": EventName("support", _l("Account enabled by support")),
    "support.release_reset_throttle": EventName("support", _l("Connector reset limit released by support")),
    # Invitations
    "invitation.created": EventName("invitations", _l("Invitation sent")),
    "invitation.resent": EventName("invitations", _l("Invitation sent again")),
    "invitation.revoked": EventName("invitations", _l("Invitation withdrawn")),
    "invitation.accepted": EventName("invitations", _l("Invitation accepted")),
    # Connector users
    "connector.login": EventName("connectors", _l("Connector user: token issued"),
                                 _l("Connector user: wrong password")),
    "connector.reset_requested": EventName("connectors", _l("Connector password: link sent to the owner")),
    "connector.reset_refused": EventName("connectors", None, _l("Connector password: request refused")),
    "connector.password_set": EventName("connectors", _l("Connector password set")),
    # Applications
    "consent.granted": EventName("apps", _l("Access given to an application")),
    "consent.denied": EventName("apps", _l("Access refused to an application")),
    "app.revoked": EventName("apps", _l("Access of an application withdrawn")),
    "authorization_code.reuse_detected": EventName("apps", None, _l("Authorization code used twice: tokens revoked")),
    "refresh_token.reuse_detected": EventName("apps", None, _l("Refresh token used twice: tokens revoked")),
    # System
    "client.created": EventName("system", _l("Application registered")),
    "firm.created": EventName("system", _l("Accountancy firm created")),
    "keys.rotated": EventName("system", _l("Signing key rotated")),
    "keys.reencrypted": EventName("system", _l("Secrets encrypted with the new key")),
}


def describe(action: str, outcome: str) -> str:
    """The name of an event as people read it ("Sign-in: wrong password"), else its code."""
    event = EVENTS.get(action)
    if event is None:
        return action
    name = event.failure if outcome == "failure" else event.success
    return str(name or event.success or event.failure)


def outcome_word(outcome: str) -> str:
    return str(OUTCOMES.get(outcome, outcome))


def actions_of(kind: str) -> list[str]:
    """The actions of one kind (for a filter); empty for an unknown kind."""
    return [action for action, event in EVENTS.items() if event.kind == kind]


def actor_label(actor: str, account_id: str | None, outcome: str = "success") -> str:
    """Who did it: a staff member's e-mail, "the person themself", the command line, an app.
    A refused try in the account's name may have been anyone's."""
    if account_id is not None and actor == account_id:
        return str(_l("The person themself") if outcome != "failure" else _l("Someone using this account"))
    kind, _, rest = (actor or "").partition(":")
    if kind == "staff" and rest:
        return rest
    if kind == "cli" and rest:
        return str(_l("Command line (%(user)s)", user=rest))
    if kind == "client" and rest:
        return str(_l("Application %(client)s", client=rest))
    if actor == "anonymous":
        return str(_l("Someone not signed in"))
    return actor
