"""Issuing and finding tokens (Authlib's generator, storage and bearer validator); families share a grant id."""

from __future__ import annotations

import datetime as dt
import secrets

from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload, lazyload

from .. import clock, unit_of_work
from ..extensions import db
from ..models import Account, ConnectorUser, Grant, Token
from ..models.oauth import AccountRow, FoundToken, PresentedCode
from ..services import tokens as token_service
from ..services.crypto import app_config, token_hash
from . import dpop, machine_tokens
from .jwt_access_tokens import AccessTokenFacts
from .supported import PERSONAL_SCOPES

# Longest access token looked up: a JWT access token (RFC 9068) runs to about 1,200 characters.
MAX_ACCESS_TOKEN_LENGTH = 4096



def _by_hash(column):
    """A token by the hash of one of its values, as the ORM row, for a caller that goes on with
    it (a resource request serves its person), built once. It reads the
    token's grant (revocation) and the account, without its memberships, in the same query;
    the client it compares by id (the request's client comes from the client cache);
    whatever else is read where used."""
    return (select(Token).options(lazyload(Token.client), lazyload(Token.connector),
                                  joinedload(Token.account).lazyload(Account.memberships))
            .where(column == bindparam("hash")))


def _found_by_hash(column):
    """A token by the hash of one of its values, as a read-only ``FoundToken``: its columns,
    its grant's revocation and its connector user's name in one SELECT of columns, built once.
    A fraction of the ORM row's cost, for what only reads the token (introspection above all)."""
    table, grants, connectors = Token.__table__, Grant.__table__, ConnectorUser.__table__
    return (select(*(table.c[name] for name in FoundToken.COLUMNS), grants.c.revoked_at.label("grant_revoked_at"),
                   connectors.c.username.label("connector_username"),
                   connectors.c.administration_id.label("connector_administration_id"))
            .join_from(table, grants, grants.c.id == table.c.grant_id)
            .outerjoin(connectors, connectors.c.id == table.c.connector_id)
            .where(column == bindparam("hash")))


# with_account: the ORM row with its person; else what a read finds. A refresh token presented
# for rotation is read by services.tokens.Rotation.
_BY_ACCESS_HASH = {True: _by_hash(Token.access_token_hash), False: _found_by_hash(Token.__table__.c.access_token_hash)}
_BY_REFRESH_HASH = {False: _found_by_hash(Token.__table__.c.refresh_token_hash)}


def _find(statements: dict, value: str, with_account: bool) -> Token | FoundToken | None:
    parameters = {"hash": token_hash(value)}
    if with_account:
        return db.session.scalar(statements[True], parameters)
    row = unit_of_work.read_first(statements[False], parameters)
    return FoundToken(row) if row is not None else None


def _opaque_value() -> str:
    """A fresh opaque token: 256 random bits in 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def generate_bearer_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True,
                          confirmation=None):
    """Authlib's token generator. People's tokens are opaque 256-bit values, with a refresh
    token where the client may refresh and `offline_access` was granted. Machine tokens
    (client credentials, connector users) carry no person's scopes and no refresh token;
    client-credentials tokens are self-contained. ``confirmation`` (RFC 7800 ``cnf``, from
    a DPoP proof: ``{"jkt": ...}``) makes a DPoP-bound token; a self-contained token
    carries it. A client registered for JWT access tokens gets its access token replaced by
    the grant, which knows the sign-in behind it (grants.IssuesAccessTokens)."""
    expires_in = expires_in or app_config()["ACCESS_TOKEN_LIFETIME"]
    machine = grant_type in ("client_credentials", "password")
    scope = client.get_allowed_scope(scope)
    if machine:
        scope = " ".join(s for s in (scope or "").split() if s not in PERSONAL_SCOPES)
    if grant_type == "client_credentials":
        access_token = machine_tokens.issue(client.get_client_id(), scope, expires_in, confirmation)
    else:
        access_token = _opaque_value()
    token = {"token_type": "DPoP" if confirmation else "Bearer", "access_token": access_token, "expires_in": expires_in}
    if scope:
        token["scope"] = scope
    if machine or not include_refresh_token or not client.check_grant_type("refresh_token"):
        return token
    if grant_type == "refresh_token" or "offline_access" in (scope or "").split():
        token["refresh_token"] = _opaque_value()
    return token


def access_token_facts(request, user, token: dict) -> AccessTokenFacts:
    """What the token response's access token stands for: its client, subject, scope and
    lifetime, the sign-in behind it (the code's, or the family's on a refresh), and the DPoP
    key it is bound to."""
    client_id = request.client.get_client_id()
    facts = {"client_id": client_id, "subject": client_id, "scope": token.get("scope", ""),
             "issued_at": clock.timestamp(), "expires_in": int(token["expires_in"]),
             "jkt": getattr(request, "dpop_jkt", None)}
    code: PresentedCode | None = getattr(request, "authorization_code", None)
    previous: Token | None = getattr(request, "refresh_token", None)
    if isinstance(user, (Account, AccountRow)):
        facts["subject"] = user.id
        if code is not None:
            facts.update(auth_time=code.auth_time, amr=tuple(code.amr or ()))
        elif previous is not None:
            facts.update(auth_time=previous.auth_time, amr=tuple(previous.grant.amr or ()))
    elif isinstance(user, ConnectorUser):
        # The password was checked in this very request.
        facts.update(subject=user.username, administration=user.administration_id,
                     auth_time=facts["issued_at"], amr=("pwd",))
    return AccessTokenFacts(**facts)


def _refresh_expiry(client, grant: Grant, now: dt.datetime) -> dt.datetime:
    """A public client's refresh token lives REFRESH idle time, and never beyond the absolute
    lifetime counted from the sign-in its family started with; a confidential client's lives
    REFRESH_TOKEN_LIFETIME."""
    config = app_config()
    if not client.is_public:
        return now + dt.timedelta(seconds=config["REFRESH_TOKEN_LIFETIME"])
    started = grant.created_at or now
    return min(now + dt.timedelta(seconds=config["PUBLIC_REFRESH_IDLE_LIFETIME"]),
               started + dt.timedelta(seconds=config["PUBLIC_REFRESH_ABSOLUTE_LIFETIME"]))


def token_row(token: dict, request, now: dt.datetime) -> dict:
    """The values of a fresh token's row (hashes only; see services.tokens.save) as the request
    tells them: its client and person, its family's grant, session and sign-in (a code's or a
    refresh token's), the DPoP key it is bound to. Reads nothing: what the database adds is
    ``store``'s."""
    code: PresentedCode | None = getattr(request, "authorization_code", None)
    previous: Token | None = getattr(request, "refresh_token", None)
    user = request.user
    row = dict.fromkeys(token_service.TOKEN_COLUMNS)
    row.update(
        client_id=request.client.get_client_id(),
        account_id=user.id if isinstance(user, (Account, AccountRow)) else None,
        connector_id=user.id if isinstance(user, ConnectorUser) else None,
        access_token_hash=token_hash(token["access_token"]),
        refresh_token_hash=token_hash(token["refresh_token"]) if token.get("refresh_token") else None,
        scope=token.get("scope", ""),
        issued_at=now,
        expires_in=int(token["expires_in"]),
        dpop_jkt=getattr(request, "dpop_jkt", None),
    )
    family = code if code is not None else previous
    if family is not None:
        row.update(grant_id=family.grant_id, session_id=family.session_id, auth_time=family.auth_time)
        if row["refresh_token_hash"]:
            row["refresh_expires_at"] = _refresh_expiry(request.client, family.grant, now)
    return row


def stored_alone(row: dict, request) -> bool:
    """Whether storing the token is its INSERT and nothing more (``store``): a refresh of an
    offline family, which minds no sign-in session and starts no family."""
    return (row["grant_id"] is not None and getattr(request, "authorization_code", None) is None
            and token_service.outlives_session(row["scope"]))


def store(row: dict, request) -> None:
    """Write a fresh token's row (``token_row``) through the request's session: a code's token or
    a connector user's (a refresh token's successor is saved by its rotation,
    ``services.tokens.Rotation``). Codes start a family; a token of no family (a connector
    user's) gets a family of its own. A code's token of an online scope is saved minding its
    session in one statement of its own where it can (``save_minding_session``)."""
    code: PresentedCode | None = getattr(request, "authorization_code", None)
    if row["grant_id"] is None:
        # A connector user's token: a family of one, with a grant to revoke it by.
        row["grant_id"] = token_service.new_family(row["client_id"], row["issued_at"])
    elif not stored_alone(row, request):
        # A code's token: it lives and dies with its session, unless it starts an offline grant.
        if not (code is not None and row["refresh_token_hash"]):
            token_service.save_minding_session(row)
            return
        token_service.mind_ended_session(row)  # an offline grant's first token
        token_service.end_earlier_connections(row)
    token_service.save(row)


def save_token(token: dict, request) -> None:
    """Authlib's storage: store a fresh token (hashes only), with the DPoP key it is bound to.
    Client-credentials tokens are self-contained and need no row."""
    if request.payload.grant_type == "client_credentials":
        return
    store(token_row(token, request, clock.now()), request)


def find_access_token(value: str, with_account: bool = False) -> Token | FoundToken | machine_tokens.MachineToken | None:
    """The stored token of an access token (opaque or JWT alike, by its hash), or the verified
    self-contained one of a client-credentials grant. ``with_account`` loads the ORM row with
    its person (a resource request); without it the stored token comes as a read-only
    ``FoundToken``."""
    if not isinstance(value, str) or not value or len(value) > MAX_ACCESS_TOKEN_LENGTH:
        return None
    if value.startswith(machine_tokens.PREFIX):
        return machine_tokens.verify(value)
    row = _find(_BY_ACCESS_HASH, value, with_account)
    if row is None and value.startswith(machine_tokens.JWT_PREFIX):
        return machine_tokens.verify_jwt(value)
    return row


def presented_client_id(request) -> str | None:
    """The client of the access token a resource request presents (in the Authorization
    header with either scheme, or in a form body), without judging the token."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "dpop"):
        value = request.form.get("access_token", "") if request.method == "POST" else ""
    token = find_access_token(value.strip())
    return token.client_id if token is not None else None


def find_refresh_token(value: str) -> FoundToken | None:
    """The stored token of a refresh token, as a read-only ``FoundToken``."""
    if not isinstance(value, str) or not value or len(value) > token_service.MAX_REFRESH_TOKEN_LENGTH:
        return None
    return _find(_BY_REFRESH_HASH, value, False)


def find_by_hint(value: str, hint: str | None) -> tuple[FoundToken | machine_tokens.MachineToken, str] | None:
    """The token a presented string belongs to and which of its values it is, looking
    first where the hint points (RFC 7009 and 7662 hints are only hints). Read-only: a
    change to it goes through services.tokens."""
    lookups = [("access_token", find_access_token), ("refresh_token", find_refresh_token)]
    if hint == "refresh_token":
        lookups.reverse()
    for kind, find in lookups:
        token = find(value)
        if token is not None:
            return token, kind
    return None


class TokenValidator(BearerTokenValidator):
    """The Bearer scheme (RFC 6750): any access token not bound to a DPoP key."""

    def authenticate_token(self, token_string):
        return find_access_token(token_string, with_account=True)

    def validate_token(self, token, scopes, request):
        super().validate_token(token, scopes, request)
        dpop.check_bearer_use(token)


class DPoPTokenValidator(TokenValidator):
    """The DPoP scheme (RFC 9449 section 7): a bound access token with a proof of its key."""

    TOKEN_TYPE = "dpop"

    def validate_token(self, token, scopes, request):
        access_token = request.headers.get("Authorization", "").split(None, 1)[-1]
        dpop.check_resource_request(token, access_token, request)
        if self.scope_insufficient(token.get_scope(), scopes):
            raise InsufficientScopeError()
