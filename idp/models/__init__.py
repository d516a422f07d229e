"""The database model: accounts, administrations, OAuth objects, flows, audit, outbox."""

from .accounts import Account, Administration, ConnectorUser, FirmClient, Invitation, Membership
from .audit import AuditEvent
from .captcha import UsedCaptcha
from .flows import EmailCode, Flow
from .lockouts import SignInSource
from .oauth import (
    AuthorizationCode,
    Client,
    ClientOrigin,
    Consent,
    Grant,
    PushedAuthorizationRequest,
    RevokedToken,
    SigningKey,
    SsoSession,
    Token,
    UsedClientAssertion,
    UsedDpopProof,
)
from .outbox import OutboxLogout, OutboxMail

__all__ = [
    "Account",
    "Administration",
    "AuditEvent",
    "AuthorizationCode",
    "ConnectorUser",
    "FirmClient",
    "Invitation",
    "Client",
    "ClientOrigin",
    "Consent",
    "EmailCode",
    "Flow",
    "Grant",
    "Membership",
    "OutboxLogout",
    "OutboxMail",
    "PushedAuthorizationRequest",
    "RevokedToken",
    "SsoSession",
    "SignInSource",
    "SigningKey",
    "Token",
    "UsedCaptcha",
    "UsedClientAssertion",
    "UsedDpopProof",
]
