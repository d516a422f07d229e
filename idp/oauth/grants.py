"""The grants (RFC 6749): authorization code, refresh token, client credentials, and the
password grant for connector users. Authlib's templates, filled from our storage."""

from __future__ import annotations

import datetime as dt
import secrets

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from flask import current_app

from .. import clock
from ..models.oauth import acr_for, requested_acr
from ..services import authorization_codes, connectors, tokens as token_service
from . import claims, dpop, jwt_access_tokens, tokens
from .supported import ANY_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS


def _usable(account):
    return account if account is not None and account.disabled_at is None else None


class IssuesAccessTokens:
    """What every token grant adds to Authlib's. A DPoP proof is checked right after the
    client authenticated, before a code or refresh token is looked at (so a proof refused
    for its nonce spends nothing and can be sent again), and the tokens issued are bound to
    its key: the token generator gets the confirmation, ``save_token`` the thumbprint. The
    access token comes in the format the client registered: opaque (the generator), or a
    JWT (RFC 9068) made here, where the request tells the sign-in behind the token (its
    code, or the refresh token's family) and the key it is bound to."""

    def authenticate_token_endpoint_client(self):
        client = super().authenticate_token_endpoint_client()
        self.request.dpop_jkt = dpop.at_authorization_server(self.request)
        return client

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        token = self.server.generate_token(
            grant_type=grant_type or self.GRANT_TYPE, client=self.request.client, user=user, scope=scope,
            expires_in=expires_in, include_refresh_token=include_refresh_token,
            confirmation=dpop.confirmation(self.request.dpop_jkt),
        )
        if self.request.client.access_token_format == "jwt":
            token["access_token"] = jwt_access_tokens.encode(tokens.access_token_facts(self.request, user, token))
        return token


class AuthorizationCodeGrant(IssuesAccessTokens, grants.AuthorizationCodeGrant):
    """The end user handed to ``create_authorization_response`` is the SSO session: it
    names the account and when and how it signed in, which the code carries into tokens."""

    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH_METHODS

    def generate_authorization_code(self):
        """As long as Authlib's (48 characters, 288 random bits where Authlib's have 286), from one
        read of the OS's CSPRNG: Authlib draws each character with ``random.SystemRandom``, a
        system call (and a release of the GIL) per character."""
        return secrets.token_urlsafe(self.AUTHORIZATION_CODE_LENGTH * 3 // 4)

    def save_authorization_code(self, code, request):
        sso = request.user
        data = request.payload.data
        client_id = request.client.get_client_id()
        authorization_codes.save(
            code,
            {"client_id": client_id, "account_id": sso.account_id, "amr": list(sso.amr),
             "claims": claims.requested(data, request.client) or None},
            {"client_id": client_id,
             "account_id": sso.account_id,
             "session_id": sso.id,
             "redirect_uri": request.payload.redirect_uri or "",
             "scope": request.scope or "",
             "nonce": data.get("nonce"),
             "auth_time": clock.to_timestamp(sso.auth_time),
             "amr": list(sso.amr),
             "acr": acr_for(sso.amr, requested_acr(data)[0]),
             "code_challenge": data.get("code_challenge"),
             "code_challenge_method": data.get("code_challenge_method"),
             "dpop_jkt": data.get("dpop_jkt"),
             "expires_at": clock.now() + dt.timedelta(seconds=current_app.config["AUTHORIZATION_CODE_LIFETIME"])},
        )

    def query_authorization_code(self, code, client):
        row = authorization_codes.find(code, client.get_client_id())
        if row is None or row.is_expired() and row.used_at is None:
            return None
        if row.used_at is None and row.grant.revoked_at is not None:
            # The person withdrew the app's access after the code was issued (read before the
            # claim: a racing replay's revocation must not cost the first redemption its answer).
            return None
        # Before the claim: a request without the code's key is not its client, and spends nothing.
        try:
            dpop.check_code(row, self.request.dpop_jkt)
        except InvalidGrantError:
            token_service.report_unproven("authorization_code", row, client.get_client_id(), ip=self.request.client_ip)
            raise
        if not authorization_codes.claim(row):
            token_service.report_reuse("authorization_code", row, client.get_client_id(), ip=self.request.client_ip)
            return None
        return row

    def delete_authorization_code(self, authorization_code):
        # Kept, marked used (when it was claimed): a second redemption is recognised as reuse.
        pass

    def authenticate_user(self, authorization_code):
        return _usable(authorization_code.account)


class RefreshTokenGrant(IssuesAccessTokens, grants.RefreshTokenGrant):
    """The presented token, its family and its person are read in one SELECT of columns, as
    read-only rows; the rotation is the claim and the successor's INSERT, committed together
    in ``save_token`` (services.tokens.Rotation, on a connection of its own: on PostgreSQL one
    statement). The rotation is closed however the request ends: a refused one is rolled back."""

    TOKEN_ENDPOINT_AUTH_METHODS = ANY_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self):
        self.rotation = token_service.Rotation()
        try:
            super().validate_token_request()
        except BaseException:
            self.rotation.close()
            raise

    def create_token_response(self):
        try:
            return super().create_token_response()
        finally:
            self.rotation.close()  # committed and closed in save_token, unless refused

    def authenticate_refresh_token(self, refresh_token):
        row = self.rotation.find(refresh_token)
        if row is None:
            return None
        if not row.is_refresh_usable():
            self.rotation.close()  # before the report writes through the session
            if row.refresh_used_at is not None:
                # A rotated-away refresh token came back: someone holds a copy.
                token_service.report_reuse("refresh_token", row, row.client_id, ip=self.request.client_ip)
            return None
        if row.check_client(self.request.client):
            try:
                dpop.check_refresh(row, self.request.client, self.request.dpop_jkt)
            except InvalidGrantError:
                self.rotation.close()
                token_service.report_unproven("refresh_token", row, row.client_id, ip=self.request.client_ip)
                raise
        return row

    def authenticate_user(self, refresh_token):
        return _usable(refresh_token.account)

    def save_token(self, token):
        """Claim the refresh token only now that the request is valid, in the transaction
        that saves its successor (committed at once): a refused request (a scope not
        granted) leaves it usable, and of two racing requests the one that loses the claim
        saves nothing."""
        previous = self.request.refresh_token
        now = clock.now()
        # The successor's values are made before the claim, whose lock is then held for the
        # statements only.
        row = tokens.token_row(token, self.request, now)
        if not self.rotation.rotate(previous, now, row, minds_session=not tokens.stored_alone(row, self.request)):
            token_service.report_reuse("refresh_token", previous, previous.client_id, ip=self.request.client_ip)
            raise InvalidGrantError()

    def revoke_old_credential(self, refresh_token):
        # Marked used when it was claimed in save_token.
        pass


class ClientCredentialsGrant(IssuesAccessTokens, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS


class ConnectorPasswordGrant(IssuesAccessTokens, grants.ResourceOwnerPasswordCredentialsGrant):
    """The password grant, for connector users only (never people's accounts), through
    clients registered for it. The bare username, without the connector domain."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def authenticate_token_endpoint_client(self):
        # Authlib sets request.client only after authenticate_user, which counts tries per client.
        self.request.client = super().authenticate_token_endpoint_client()
        return self.request.client

    def authenticate_user(self, username, password):
        connector = connectors.authenticate(username, password, client_id=self.request.client.get_client_id(),
                                            ip=self.request.client_ip)
        if connector is None:
            raise InvalidGrantError("The username or password is not correct, or the user is locked.")
        return connector
