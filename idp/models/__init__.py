"""The database model: accounts, administrations, OAuth objects, flows, audit, outbox."""

from .accounts import Account, Administration, ConnectorUser, FirmClient, Invitation, Membership
from .audit import AuditEvent
from .captcha import UsedCaptcha
from .flows import EmailCode, Flow
from .lockouts import SignInSource
from .oauth import AuthorizationCode, Client, Consent, Grant, RevokedToken, SsoSession, SigningKey, Token, UsedClientAssertion
from .outbox import OutboxLogout, OutboxMail
from .passkeys import Passkey

__all__ = [
    "Account",
    "Administration",
    "AuditEvent",
    "AuthorizationCode",
    "ConnectorUser",
    "FirmClient",
    "Invitation",
    "Client",
    "Consent",
    "EmailCode",
    "Flow",
    "Grant",
    "Membership",
    "OutboxLogout",
    "OutboxMail",
    "Passkey",
    "RevokedToken",
    "SsoSession",
    "SignInSource",
    "SigningKey",
    "Token",
    "UsedCaptcha",
    "UsedClientAssertion",
]
