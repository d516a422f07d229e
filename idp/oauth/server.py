"""Authlib's AuthorizationServer with our grants, endpoints and storage."""

from __future__ import annotations

import datetime as dt
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode, UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import current_app, g
from sqlalchemy import select, update

from .. import clock
from ..extensions import db
from ..models import AuthorizationCode, Client, Token
from ..services.crypto import token_hash
from . import claims, machine_tokens, tokens

SCOPES = ["openid", "profile", "email", "offline_access", "administrations"]


_clients: dict[str, tuple[float, Client | None]] = {}
CLIENT_CACHE_SECONDS = 5.0


def query_client(client_id):
    """The client, from a per-process cache of a few seconds: every token request
    authenticates a client, and clients change rarely."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    now = time.monotonic()
    hit = _clients.get(client_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    client = db.session.get(Client, client_id)
    if client is not None:
        db.session.expunge(client)
    if len(_clients) > 10000:
        _clients.clear()
    _clients[client_id] = (now + CLIENT_CACHE_SECONDS, client)
    return client


def forget_clients() -> None:
    _clients.clear()


class PKCE(CodeChallenge):
    """PKCE with S256 is required of every client; `plain` is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        from authlib.oauth2.rfc6749.errors import InvalidRequestError

        data = grant.request.payload.data
        if not data.get("code_challenge") and not data.get("code_challenge_method"):
            if grant.request.client.pkce_required or grant.request.client.is_public:
                raise InvalidRequestError("PKCE is required: send 'code_challenge' with method S256.")
            return None
        if data.get("code_challenge_method", "plain") != "S256":
            raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        from authlib.oauth2.rfc6749.errors import InvalidRequestError

        code = grant.request.authorization_code
        if code.code_challenge and not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        return super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code, request):
        sso = g.sso_session
        data = request.payload.data
        row = AuthorizationCode(
            code_hash=token_hash(code),
            client_id=request.client.get_client_id(),
            account_id=request.user.id,
            session_id=sso.id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "",
            nonce=data.get("nonce"),
            auth_time=clock.to_timestamp(sso.auth_time),
            amr=list(sso.amr),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires_at=clock.now() + dt.timedelta(seconds=current_app.config["AUTHORIZATION_CODE_LIFETIME"]),
        )
        db.session.add(row)
        db.session.commit()
        return row

    def query_authorization_code(self, code, client):
        if not isinstance(code, str) or len(code) > 512:
            return None
        row = db.session.scalar(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == token_hash(code), AuthorizationCode.client_id == client.get_client_id()
            )
        )
        if row is None or row.is_expired() and row.used_at is None:
            return None
        # Claim the code in one conditional UPDATE, so two requests racing with the same
        # code cannot both pass; the loser is treated as reuse.
        claimed = db.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=clock.now())
        ).rowcount
        db.session.commit()
        if not claimed:
            tokens.report_reuse("authorization_code", row, client.get_client_id())
            return None
        return row

    def delete_authorization_code(self, authorization_code):
        # Kept, marked used (when it was claimed): a second redemption is recognised as reuse.
        pass

    def authenticate_user(self, authorization_code):
        account = authorization_code.account
        if account is None or account.disabled_at is not None:
            return None
        return account


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        row = tokens.find_refresh_token(refresh_token)
        if row is None:
            return None
        if not row.is_refresh_usable():
            if row.refresh_used_at is not None:
                # A rotated-away refresh token came back: someone holds a copy.
                tokens.report_reuse("refresh_token", row, row.client_id)
            return None
        # Rotate in one conditional UPDATE: of two racing requests only one wins.
        claimed = db.session.execute(
            update(Token)
            .where(Token.id == row.id, Token.refresh_used_at.is_(None), Token.revoked_at.is_(None))
            .values(refresh_used_at=clock.now())
        ).rowcount
        db.session.commit()
        if not claimed:
            tokens.report_reuse("refresh_token", row, row.client_id)
            return None
        return row

    def authenticate_user(self, refresh_token):
        account = refresh_token.account
        if account is None or account.disabled_at is not None:
            return None
        return account

    def revoke_old_credential(self, refresh_token):
        # Already marked used when it was claimed in authenticate_refresh_token.
        pass


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class ConnectorPasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    """The password grant, for connector users only (never people's accounts), through
    clients registered for it. The bare username, without the connector domain."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def authenticate_user(self, username, password):

        from ..services import connectors

        connector = connectors.authenticate(username, password, ip=g.get("remote_addr"))
        db.session.commit()  # failed tries and lockouts count even though the request fails
        if connector is None:
            raise InvalidGrantError("The username or password is not correct, or the user is locked.")
        return connector


class IdpOpenIDCode(OpenIDCode):
    """ID tokens: RS256 with the current key's `kid`, our issuer, `sid`, `auth_time`.

    Prompt handling (none, login, consent) is done by the authorize view, which knows
    the SSO session; Authlib's own prompt hook is therefore not registered."""

    def __call__(self, grant):
        grant.register_hook("after_create_token_response", self.process_token)
        grant.register_hook("after_validate_authorization_request_payload", self.validate_openid_authorization_request)

    def exists_nonce(self, nonce, request):
        return False

    def resolve_client_private_key(self, client):
        from ..services import keys

        return keys.signing_key()[1]

    def get_client_algorithm(self, client):
        return "RS256"

    def get_encode_header(self, client):
        from ..services import keys

        return {"alg": "RS256", "kid": keys.signing_key()[0], "typ": "JWT"}

    def get_client_claims(self, client):
        now = clock.timestamp()
        return {
            "iss": current_app.config["ISSUER"],
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + current_app.config["ID_TOKEN_LIFETIME"],
        }

    def get_authorization_code_claims(self, authorization_code):
        result = super().get_authorization_code_claims(authorization_code)
        if authorization_code.session_id:
            result["sid"] = authorization_code.session_id
        return result

    def generate_user_info(self, user, scope):
        return claims.user_info(user, scope)


class IdpIntrospectionEndpoint(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string, token_type_hint):
        if token_type_hint == "refresh_token":
            return tokens.find_refresh_token(token_string) or tokens.find_access_token(token_string)
        return tokens.find_access_token(token_string) or tokens.find_refresh_token(token_string)

    def create_introspection_payload(self, token):
        if token is not None:
            string = g.get("introspected_string", "")
            if token.refresh_token_hash == token_hash(string) and token.refresh_token_hash:
                if not token.is_refresh_usable():
                    return {"active": False}
                return self.introspect_token(token, kind="refresh_token")
        return super().create_introspection_payload(token)

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        g.introspected_string = request.form.get("token", "")
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and not self.check_permission(token, client, request):
            return None
        return token

    def check_permission(self, token, client, request):
        # A client learns about its own tokens only (others get {"active": false}).
        return token.check_client(client)

    def introspect_token(self, token, kind="access_token"):
        payload = {
            "active": True,
            "client_id": token.client_id,
            "token_type": "Bearer" if kind == "access_token" else "refresh_token",
            "scope": token.scope,
            "iat": clock.to_timestamp(token.issued_at),
            "exp": clock.to_timestamp(token.expires_at)
            if kind == "access_token"
            else clock.to_timestamp(token.refresh_expires_at or token.expires_at),
            "iss": current_app.config["ISSUER"],
        }
        if token.account is not None:
            payload["sub"] = token.account.id
            payload["aud"] = token.client_id
        elif getattr(token, "connector", None) is not None:
            payload["sub"] = token.connector.username
            payload["administration"] = token.connector.administration_id
        else:
            payload["sub"] = token.client_id
        return payload


class IdpRevocationEndpoint(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        if token_type_hint == "refresh_token":
            return tokens.find_refresh_token(token_string) or tokens.find_access_token(token_string)
        return tokens.find_access_token(token_string) or tokens.find_refresh_token(token_string)

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and not token.check_client(client):
            # RFC 7009: a token of another client is not revoked, and not disclosed.
            return None
        return token

    def revoke_token(self, token, request):
        if isinstance(token, machine_tokens.MachineToken):
            machine_tokens.revoke(token)
        elif token.account_id:
            # Revoking either token of an authorization ends that authorization's family.
            tokens.revoke_family(token.grant_id)
        else:
            token.revoked_at = clock.now()
        db.session.commit()


class IdpUserInfoEndpoint(UserInfoEndpoint):
    def __call__(self, request):
        """Claims of the person behind the token; a machine token (no person) is refused."""
        from authlib.consts import default_json_headers
        from authlib.oauth2.rfc6750.errors import InvalidTokenError

        token = self.resource_protector.acquire_token("openid")
        user = token.get_user()
        if user is None:
            raise InvalidTokenError()
        return 200, self.generate_user_info(user, token.scope), default_json_headers
    def get_issuer(self):
        return current_app.config["ISSUER"]

    def generate_user_info(self, user, scope):
        return claims.user_info(user, scope)

    def resolve_private_key(self):
        from ..services import keys

        return keys.signing_key()[1]


class IdpEndSessionEndpoint(EndSessionEndpoint):
    def get_server_jwks(self):
        from ..services import keys

        return keys.public_keyset()

    def get_algorithms(self):
        return ["RS256"]

    def end_session(self, end_session_request):
        # The view ends the SSO session itself once the person confirmed.
        g.end_session_request = end_session_request


class TokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return tokens.find_access_token(token_string)


class IdpAuthorizationServer(AuthorizationServer):
    def get_authorization_grant(self, request):
        """As Authlib's, but the error does not echo the (possibly malformed) response_type."""
        from authlib.oauth2.rfc6749.authorization_server import _create_grant
        from authlib.oauth2.rfc6749.errors import UnsupportedResponseTypeError

        for grant_cls, extensions in self._authorization_grants:
            if grant_cls.check_authorization_endpoint(request):
                return _create_grant(grant_cls, extensions, request, self)
        redirect_uri = None
        client = self.query_client(request.payload.client_id)
        if client is not None:
            requested = request.payload.redirect_uri
            if requested:
                redirect_uri = requested if client.check_redirect_uri(requested) else None
            else:
                redirect_uri = client.get_default_redirect_uri()

        class Unsupported(UnsupportedResponseTypeError):
            def get_error_description(self):
                return "Only response_type=code is supported."

        raise Unsupported("code", redirect_uri=redirect_uri)

    def validate_requested_scope(self, scope):
        """Scopes we do not offer are left out of the grant rather than refused
        (RFC 6749 section 3.3); the token response names the granted scope."""
        return None


authorization = IdpAuthorizationServer()
require_oauth = ResourceProtector()


def init_oauth(app) -> None:
    app.config["OAUTH2_SCOPES_SUPPORTED"] = SCOPES
    authorization.init_app(app, query_client=query_client, save_token=tokens.save_token)
    authorization.register_token_generator("default", tokens.generate_bearer_token)
    if not authorization._token_grants:
        authorization.register_grant(AuthorizationCodeGrant, [PKCE(required=True), IdpOpenIDCode(require_nonce=False)])
        authorization.register_grant(RefreshTokenGrant)
        authorization.register_grant(ClientCredentialsGrant)
        authorization.register_grant(ConnectorPasswordGrant)
        authorization.register_endpoint(IdpIntrospectionEndpoint)
        authorization.register_endpoint(IdpRevocationEndpoint)
        authorization.register_endpoint(IdpUserInfoEndpoint(resource_protector=require_oauth))
        authorization.register_endpoint(IdpEndSessionEndpoint)
        require_oauth.register_token_validator(TokenValidator())
