"""The database model: accounts, administrations, OAuth objects, flows, audit, outbox."""

from sqlalchemy import DDL, event

from ..extensions import db
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
from .passkeys import Passkey

# The trigram indexes (base.substring_index) need PostgreSQL's pg_trgm, also where tests create
# the tables without the migrations.
event.listen(db.metadata, "before_create", DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"))

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
    "Passkey",
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
