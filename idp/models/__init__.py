"""The database model: accounts, administrations, OAuth objects, flows, audit, outbox."""

from .accounts import Account, Administration, ConnectorUser, FirmClient, Invitation, Membership
from .audit import AuditEvent
from .captcha import UsedCaptcha
from .flows import EmailCode, Flow
from .lockouts import SignInSource
from .oauth import AuthorizationCode, Client, Consent, RevokedToken, Session, SigningKey, Token
from .outbox import OutboxMail

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
    "Membership",
    "OutboxMail",
    "RevokedToken",
    "Session",
    "SignInSource",
    "SigningKey",
    "Token",
    "UsedCaptcha",
]
