"""OAuth 2 / OpenID Connect objects: clients, grants, codes, tokens, consents, SSO sessions, keys."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import NamedTuple
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import clock, redirect_uris
from ..extensions import db
from .accounts import Account, ConnectorUser, Membership
from .base import belongs_to, created_at, new_id, token_hash


# The REFEDS MFA profile: what a sign-in with a password and a second factor is worth.
ACR_MFA = "https://refeds.org/profile/mfa"
# OpenID Connect EAP ACR Values 1.0 `phr`: phishing-resistant. A passkey signs for this
# provider's origin only, so a look-alike site cannot use what it sees. (`phrh`, hardware-
# protected, is not claimed: without attestation nothing proves where the key lives.)
ACR_PHISHING_RESISTANT = "phr"
# The `amr` of a passkey (RFC 8176): proof of possession of a hardware- or software-held key.
PASSKEY_AMR = frozenset({"hwk", "swk"})


def acr_achieved(amr) -> list[str]:
    """The `acr` values a sign-in with these `amr` values meets, strongest first."""
    amr = set(amr or ())
    if "mfa" not in amr:
        return []
    return [ACR_PHISHING_RESISTANT, ACR_MFA] if amr & PASSKEY_AMR else [ACR_MFA]


def claims_parameter(params: dict) -> dict:
    """The `claims` parameter of an authorization request (OpenID Connect Core 5.5), parsed;
    empty when there is none or it is malformed (the authorize checks refuse that)."""
    raw = params.get("claims")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        claims = json.loads(raw)
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def requested_acr(params: dict) -> tuple[list[str], bool]:
    """The `acr` values an authorization request asks for, in its order of preference, and
    whether they are essential: the `claims` parameter's `id_token.acr` (OpenID Connect Core
    5.5.1.1), else `acr_values` (always voluntary). A malformed parameter asks for nothing
    (the authorize checks refuse it)."""
    claims = claims_parameter(params)
    if claims:
        id_token = claims.get("id_token")
        acr = id_token.get("acr") if isinstance(id_token, dict) else None
        if isinstance(acr, dict):
            values = acr.get("values") if isinstance(acr.get("values"), list) else (
                [acr["value"]] if "value" in acr else [])
            return [str(v) for v in values], acr.get("essential") is True
    acr_values = params.get("acr_values")
    return (acr_values.split() if isinstance(acr_values, str) else []), False


def acr_for(amr, wanted=()) -> str | None:
    """The `acr` of a sign-in with these `amr` values: the first of the values the client
    asked for (``wanted``, in its order of preference) that the sign-in meets, else the
    strongest it meets."""
    achieved = acr_achieved(amr)
    for value in wanted:
        if value in achieved:
            return value
    return achieved[0] if achieved else None


def localized_name(name: str, names: dict | None, locale: str | None) -> str:
    """The name people see in ``locale``: the one registered for it, else the registered name."""
    names = names or {}
    tag = (locale or "").lower()
    return names.get(tag) or names.get(tag.split("-")[0]) or name


class Client(db.Model, ClientMixin):
    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the client_id
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of a 256-bit secret
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    grant_types: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    scope: Mapped[str] = mapped_column(String(500), nullable=False)
    # The methods the client may authenticate with, space-separated: one registered method,
    # or "client_secret_basic client_secret_post" for a client registered without one.
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40), nullable=False)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # PKCE (S256) is required unless an operator registered a confidential client
    # without it (e.g. a certification test suite); public clients always need it.
    pkce_required: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # private_key_jwt (RFC 7523): the client's public keys, inline or where it publishes them.
    jwks: Mapped[dict | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    # An API behind the relying apps: may introspect tokens issued to other clients.
    resource_server: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The app's home page (client_uri): where "back to the app" leads from the provider's pages.
    client_uri: Mapped[str | None] = mapped_column(String(500))
    # The name per language where the app registered one (client_name#nl): {"nl": "..."}.
    localized_names: Mapped[dict | None] = mapped_column(JSON)
    # "opaque" (a random string to introspect) or "jwt" (RFC 9068, readable by the resource server).
    access_token_format: Mapped[str] = mapped_column(String(10), default="opaque", nullable=False)
    # Authorization requests only by reference to a pushed request (RFC 9126).
    require_par: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[dt.datetime] = created_at()

    @property
    def client_id(self) -> str:
        return self.id

    def display_name(self, locale: str | None) -> str:
        return localized_name(self.name, self.localized_names, locale)

    @property
    def home_uri(self) -> str | None:
        """Where a person goes back to the app: its registered home page, else the site of
        its (first) redirect URI."""
        if self.client_uri:
            return self.client_uri
        for uri in self.redirect_uris or ():
            parts = urlsplit(uri)
            if parts.scheme in ("http", "https") and parts.netloc:
                return f"{parts.scheme}://{parts.netloc}/"
        return None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def client_metadata(self) -> dict:
        return {
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "backchannel_logout_uri": self.backchannel_logout_uri,
            "require_pushed_authorization_requests": self.require_par,
        }

    def get_client_id(self):
        return self.id

    def get_default_redirect_uri(self):
        # Only unambiguous: with several registered URIs the request must name one.
        if len(self.redirect_uris) == 1:
            return self.redirect_uris[0]
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope_to_list(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uris.registered(self.redirect_uris, redirect_uri)

    def check_post_logout_redirect_uri(self, uri) -> bool:
        return redirect_uris.registered(self.post_logout_redirect_uris, uri)

    def check_client_secret(self, client_secret):
        if not self.secret_hash or not isinstance(client_secret, str):
            return False
        return hmac.compare_digest(self.secret_hash, token_hash(client_secret))

    @property
    def auth_methods(self) -> list[str]:
        return self.token_endpoint_auth_method.split()

    def check_endpoint_auth_method(self, method, endpoint):
        """The registered method, at every endpoint; public clients may push authorization
        requests and revoke, not introspect."""
        if self.is_public:
            return method == "none" and endpoint in ("token", "revocation", "pushed_authorization")
        return method in self.auth_methods

    def check_response_type(self, response_type):
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


class ClientOrigin(db.Model):
    """An origin (``scheme://host[:port]``) whose pages may call the protocol endpoints for a
    client (CORS): a browser app's. Registered with the client, by default the origins of
    its web redirect URIs."""

    __tablename__ = "client_origins"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    origin: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)


class SsoSession(db.Model):
    """A person's single sign-on session at the provider (the `sid`)."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the sid
    account_id: Mapped[str] = belongs_to("accounts")
    auth_time: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    amr: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    created_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # When the browser last came back with this session, to within SESSION_SEEN_INTERVAL
    # (services.sessions.seen): not written at every request.
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship(lazy="joined")

    def active(self, now: dt.datetime) -> bool:
        return self.ended_at is None and self.expires_at > now

    @property
    def handle(self) -> str:
        """How a page names the session: the sid itself never leaves the provider's cookie
        and the relying apps' tokens, so a page shows a hash of it."""
        return token_hash("session-handle:" + self.id)[:24]


class Grant(db.Model):
    """One authorization of a client, and the family of tokens descending from it (its
    code, then each refresh). Revoking the grant revokes every token of the family,
    those saved after the revocation included: each use of a token reads its grant."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)  # the grant_id
    client_id: Mapped[str] = belongs_to("clients")
    # None for a connector user's tokens (password grant): no person granted them.
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = created_at()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # How the person signed in when the family started (the code's session): every token of the
    # family, refreshed ones too, speaks of that sign-in. None for a connector user's tokens.
    amr: Mapped[list | None] = mapped_column(JSON)
    # The claims the authorization asked for by name and is given beyond its scope (OpenID
    # Connect Core 5.5), per place: {"userinfo": [...], "id_token": [...]}; None for none.
    claims: Mapped[dict | None] = mapped_column(JSON)


class AuthorizationCode(db.Model):
    """A code issued to a client, written and redeemed on the table by
    services.authorization_codes; Authlib sees it as a ``PresentedCode``."""

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), nullable=False)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    # Ending a session finds the clients it signed in to by their codes (back-channel logout).
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The family of tokens this code starts; reuse of the code revokes it.
    grant_id: Mapped[str] = belongs_to("grants")
    redirect_uri: Mapped[str] = mapped_column(Text, default="", nullable=False)
    scope: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    nonce: Mapped[str | None] = mapped_column(String(500))
    auth_time: Mapped[int] = mapped_column(Integer, nullable=False)
    amr: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    # The `acr` of the ID token, chosen when the code was issued from what the client asked for.
    acr: Mapped[str | None] = mapped_column(String(100))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    # RFC 9449 section 10: only a DPoP proof with the key of this thumbprint redeems the code.
    dpop_jkt: Mapped[str | None] = mapped_column(String(43))
    created_at: Mapped[dt.datetime] = created_at()
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    # Kept after use: a second redemption is detected and revokes what the first issued.
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class IssuedToken(TokenMixin):
    """What every access token tells Authlib, stored or self-contained: its client, scope
    and lifetime (from ``client_id``, ``scope``, ``issued_at`` and ``expires_in``), and the
    DPoP key it is bound to (``dpop_jkt``, the key's RFC 7638 thumbprint; None for a bearer token)."""

    dpop_jkt = None

    def check_client(self, client):
        return self.client_id == client.get_client_id()

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    @property
    def expires_at(self) -> dt.datetime:
        return self.issued_at + dt.timedelta(seconds=self.expires_in)

    def is_expired(self):
        return self.expires_at <= clock.now()


class StoredToken(IssuedToken):
    """What a stored token's columns decide, for the row (``Token``) and for what a read finds
    of it (``FoundToken``) alike: whether its access token, and its refresh token, still serve.
    Reads ``revoked_at``, ``access_revoked_at``, ``refresh_used_at``, ``refresh_expires_at``
    and its grant's ``grant_revoked_at``."""

    def family_revoked(self) -> bool:
        return self.revoked_at is not None or self.grant_revoked_at is not None

    def is_revoked(self):
        """Whether the access token is revoked."""
        return self.family_revoked() or self.access_revoked_at is not None

    def is_refresh_usable(self) -> bool:
        now = clock.now()
        return (
            not self.family_revoked()
            and self.refresh_used_at is None
            and (self.refresh_expires_at is None or self.refresh_expires_at > now)
        )


class Token(db.Model, StoredToken):
    """An access token and, where issued, its refresh token; both stored as SHA-256.

    Tokens that descend from one authorization (a code, then each refresh) share a
    `grant_id`, so reuse of a spent refresh token or code revokes the whole family.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = belongs_to("clients")
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    # A connector user's token (password grant): the machine user, not a person.
    connector_id: Mapped[int | None] = mapped_column(ForeignKey("connector_users.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[str] = belongs_to("grants")
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    issued_at: Mapped[dt.datetime] = created_at()
    expires_in: Mapped[int] = mapped_column(Integer, nullable=False)
    refresh_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    # Set when the refresh token was exchanged for a new one (rotation).
    refresh_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The access token alone ended (its sign-in session ended); an offline refresh token lives on.
    access_revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Bound with DPoP (RFC 9449): the access token is used only with proofs of this key, and
    # so is the refresh token of a public client.
    dpop_jkt: Mapped[str | None] = mapped_column(String(43))

    client: Mapped[Client] = relationship(lazy="joined")
    account: Mapped[Account | None] = relationship(lazy="joined")
    connector: Mapped[ConnectorUser | None] = relationship(lazy="joined")
    grant: Mapped[Grant] = relationship(lazy="joined")

    @property
    def grant_revoked_at(self) -> dt.datetime | None:
        return self.grant.revoked_at

    def get_user(self):
        return self.account

    def get_client(self):
        return self.client


class ConnectorName(NamedTuple):
    """Who a connector user's token speaks for, as introspection names it."""

    username: str
    administration_id: str


class ReadOnlyRow:
    """Values one SELECT of columns found, as attributes: no session tracks the object and
    nothing loads on access, so it costs a fraction of an ORM row. A change goes through a
    statement (services.tokens), never through the object, which refuses to be written."""

    def __init__(self, values: Mapping | Iterable[tuple[str, object]]):
        self.__dict__.update(values)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only ({name})")


class FoundToken(StoredToken, ReadOnlyRow):
    """A stored token as one SELECT of columns finds it (oauth.tokens), for what only reads it:
    introspection, revocation's checks, a CORS check. Its ``COLUMNS``, its grant's
    ``grant_revoked_at`` and, for a connector user's token, that user's ``connector_username``
    and ``connector_administration_id``."""

    COLUMNS = ("id", "client_id", "account_id", "connector_id", "grant_id", "scope", "issued_at", "expires_in",
               "refresh_expires_at", "refresh_used_at", "revoked_at", "access_revoked_at", "dpop_jkt")

    @property
    def connector(self) -> ConnectorName | None:
        if self.connector_id is None:
            return None
        return ConnectorName(self.connector_username, self.connector_administration_id)


class FamilyRow(ReadOnlyRow):
    """A token family's ``Grant`` as a refresh reads it: its revocation, the sign-in it started
    with (``amr``), the claims asked for by name and when it started."""

    COLUMNS = ("id", "revoked_at", "amr", "claims", "created_at")


class AccountRow(ReadOnlyRow):
    """The person behind a refresh token as the refresh reads them: what decides whether they
    may still have tokens (``disabled_at``) and what an ID token says of them. Authlib's user:
    the token grants treat it as the ``Account`` it is read from. Its memberships (the
    ``administrations`` claim) are read when first asked for, afresh, as the account's are."""

    COLUMNS = ("id", "email", "name", "email_verified", "disabled_at")

    @property
    def sub(self) -> str:
        return self.id

    def get_user_id(self) -> str:
        return self.id

    @cached_property
    def memberships(self) -> list[Membership]:
        return list(db.session.scalars(select(Membership).where(Membership.account_id == self.id)))


class PresentedRefreshToken(StoredToken, ReadOnlyRow):
    """A refresh token presented for rotation, as one SELECT of columns finds it
    (services.tokens.Rotation.find): its token's ``COLUMNS``, its family (``grant``, a
    ``FamilyRow``) and its person (``account``, an ``AccountRow``; None if the token has none).
    What the refresh grant and the ID token of the refresh read, nothing more; rotated by a
    statement (services.tokens.Rotation.claim)."""

    COLUMNS = ("id", "client_id", "account_id", "grant_id", "session_id", "scope", "issued_at", "expires_in",
               "refresh_expires_at", "auth_time", "refresh_used_at", "revoked_at", "access_revoked_at", "dpop_jkt")

    def __init__(self, values, grant: FamilyRow, account: AccountRow | None):
        super().__init__(values)
        self.__dict__.update(grant=grant, account=account)

    @property
    def grant_revoked_at(self) -> dt.datetime | None:
        return self.grant.revoked_at


class PresentedCode(ReadOnlyRow, AuthorizationCodeMixin):
    """An authorization code presented at the token endpoint, as one SELECT of columns finds
    it (services.authorization_codes.find): the code's ``COLUMNS``, its family (``grant``, a
    ``FamilyRow``) and its person (``account``, an ``AccountRow``). What the code grant and
    its ID token read; claimed by a statement (authorization_codes.claim)."""

    COLUMNS = ("id", "client_id", "account_id", "session_id", "grant_id", "redirect_uri", "scope", "nonce",
               "auth_time", "amr", "acr", "code_challenge", "code_challenge_method", "dpop_jkt", "expires_at",
               "used_at")

    def __init__(self, values, grant: FamilyRow, account: AccountRow):
        super().__init__(values)
        self.__dict__.update(grant=grant, account=account)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return self.acr or acr_for(self.amr)

    def get_amr(self):
        return list(self.amr) or None

    def is_expired(self):
        return self.expires_at <= clock.now()


class Consent(db.Model):
    """The scopes a person granted a third-party client."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = belongs_to("accounts")
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), nullable=False)
    scope: Mapped[str] = mapped_column(String(500), nullable=False)
    granted_at: Mapped[dt.datetime] = created_at()


class SigningKey(db.Model):
    """An RS256 key pair. The newest active key signs; retired keys stay published
    until the last token they signed has expired."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default="RS256", nullable=False)
    private_jwk: Mapped[str] = mapped_column(Text, nullable=False)  # encrypted JSON
    public_jwk: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[dt.datetime] = created_at()
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    publish_until: Mapped[dt.datetime | None] = mapped_column(DateTime)


class UsedClientAssertion(db.Model):
    """A client assertion (private_key_jwt) seen, remembered until it expires: its `jti`
    may not come back."""

    __tablename__ = "used_client_assertions"

    # SHA-256 of the client id and the assertion's jti.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)


class UsedDpopProof(db.Model):
    """A DPoP proof seen, remembered while its `iat` is within the accepted window: its
    `jti` may not come back with the same key."""

    __tablename__ = "used_dpop_proofs"

    # SHA-256 of the key's thumbprint and the proof's jti.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)


class PushedAuthorizationRequest(db.Model):
    """An authorization request a client pushed (RFC 9126), until its request_uri is used
    once or expires. Any instance redeems it."""

    __tablename__ = "pushed_authorization_requests"

    # SHA-256 of the request_uri handed to the client.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), nullable=False)
    params: Mapped[dict] = mapped_column(JSON, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class RevokedToken(db.Model):
    """A revoked self-contained access token, remembered until it would have expired."""

    __tablename__ = "revoked_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)
