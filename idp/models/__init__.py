"""The database model: accounts, administrations, OAuth objects, flows, audit, outbox."""

from .accounts import Account, Administration, Membership
from .audit import AuditEvent
from .flows import EmailCode, Flow
from .oauth import AuthorizationCode, Client, Consent, RevokedToken, Session, SigningKey, Token
from .outbox import OutboxMail

__all__ = [
    "Account",
    "Administration",
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "Consent",
    "EmailCode",
    "Flow",
    "Membership",
    "OutboxMail",
    "RevokedToken",
    "Session",
    "SigningKey",
    "Token",
]
