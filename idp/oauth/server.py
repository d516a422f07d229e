"""Authlib's AuthorizationServer, with the grants and endpoints this provider supports
registered from one list (which the discovery document is also built from)."""

from __future__ import annotations

import json
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii as _json_string

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.grants import AuthorizationEndpointMixin, BaseGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Response, current_app
from flask.json.provider import DefaultJSONProvider
from flask import request as flask_request

from . import client_auth, par, tokens
from .clients import query_client
from .end_session import IdpEndSessionEndpoint
from .grants import AuthorizationCodeGrant, ClientCredentialsGrant, ConnectorPasswordGrant, RefreshTokenGrant
from .introspection import IdpIntrospectionEndpoint
from .oidc import IdpUserInfoEndpoint, IdToken
from .pkce import PKCE
from .revocation import IdpRevocationEndpoint
from .supported import SCOPES

__all__ = ["GRANTS", "ENDPOINTS", "SCOPES", "authorization", "init_oauth", "require_oauth"]


class ResponseTypeNotSupported(UnsupportedResponseTypeError):
    def get_error_description(self):
        # Not Authlib's text: it echoes the (possibly malformed) response_type.
        return "Only response_type=code is supported."


class UnsupportedResponseType(AuthorizationEndpointMixin, BaseGrant):
    """Registered after the real grants, it takes the authorization requests none of them
    took and refuses them, back to the client where its redirect URI is known."""

    @classmethod
    def check_authorization_endpoint(cls, request):
        return True

    def validate_no_multiple_request_parameter(self, request):
        pass  # refused whatever its parameters

    def validate_consent_request(self):
        client = self.server.query_client(self.request.payload.client_id)
        redirect_uri = None
        if client is not None:
            try:
                redirect_uri = self.validate_authorization_redirect_uri(self.request, client)
            except InvalidRequestError:
                pass
        raise ResponseTypeNotSupported("code", redirect_uri=redirect_uri)


_ENCODERS: dict[tuple, json.JSONEncoder] = {}
# What ``handle_response`` makes the server's answers with: Flask's response class, or while a
# caller below Flask's dispatch (web/lean.py) calls the server, the callable it sets here.
answer_maker: ContextVar = ContextVar("idp.oauth.answer_maker", default=Response)


def _json(payload: dict) -> str | bytes:
    """``flask.json.dumps(payload)``: with Flask's own provider, a flat answer (the token response,
    introspection's, an error's) written out as bytes (``_flat_json``), any other through an
    encoder made once for its settings (``json.dumps`` with arguments makes one per call); any
    other provider's dumps."""
    provider = current_app._get_current_object().json
    if type(provider) is not DefaultJSONProvider:
        return provider.dumps(payload)
    settings = (provider.ensure_ascii, provider.sort_keys, provider.default)
    if settings[0] and settings[1]:
        flat = _flat_json(payload)
        if flat is not None:
            return flat
    encoder = _ENCODERS.get(settings)
    if encoder is None:
        encoder = _ENCODERS[settings] = json.JSONEncoder(default=provider.default, ensure_ascii=settings[0],
                                                         sort_keys=settings[1])
    return encoder.encode(payload)


_LITERALS = {True: "true", False: "false", None: "null"}


def _flat_json(payload: dict) -> bytes | None:
    """``json.dumps(payload, sort_keys=True).encode()`` (Flask's settings: ASCII, keys sorted,
    the default separators) for a dict of strings, integers, booleans and None under string
    keys; None for any other, which the encoder writes."""
    parts = []
    for key, value in sorted(payload.items()):
        kind = type(value)
        if kind is str:
            value = _json_string(value)
        elif kind is int:
            value = int.__repr__(value)
        elif kind is bool or value is None:
            value = _LITERALS[value]
        else:
            return None
        if type(key) is not str:
            return None
        parts.append(f"{_json_string(key)}: {value}")
    return ("{" + ", ".join(parts) + "}").encode()


class Issuer(IssuerParameter):
    """RFC 9207: every authorization response names its issuer."""

    def get_issuer(self):
        return current_app.config["ISSUER"]


class BearerProtector(ResourceProtector):
    """The access token in the Authorization header, or in a form-encoded POST body
    (RFC 6750 section 2.2); never in both, never in the query."""

    def parse_request_authorization(self, request):
        form = flask_request.form if flask_request.method == "POST" else {}
        # A blank `access_token` field is no token sent.
        if flask_request.mimetype == "application/x-www-form-urlencoded" and form.get("access_token", "").strip():
            if request.headers.get("Authorization"):
                raise InvalidRequestError("Send the access token once: in the header or in the body.")
            return self.get_token_validator("bearer"), form["access_token"]
        return super().parse_request_authorization(request)


class IdpAuthorizationServer(AuthorizationServer):
    def create_oauth2_request(self, request):
        # The client's address travels with Authlib's request, for the grants to hand to
        # the services that count failures and report reuse; so does the key of its DPoP
        # proof, once checked. Parameters pushed earlier (PAR) replace the URL's. It wraps the
        # request itself, not Flask's proxy of it: the grants read its values a dozen times.
        # One made already, with those, from the WSGI environ (web/lean.py) is taken as it is.
        if isinstance(request, OAuth2Request):
            return request
        oauth2_request = FlaskOAuth2Request(flask_request._get_current_object())
        oauth2_request.client_ip = flask_request.remote_addr
        oauth2_request.dpop_jkt = None
        oauth2_request.pushed = isinstance(request, par.Pushed)
        if oauth2_request.pushed:
            oauth2_request.payload = BasicOAuth2Payload(dict(request))
        return oauth2_request

    def generate_token(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True,
                       confirmation=None):
        """Authlib's, passing on what the token confirms (RFC 7800 ``cnf``: ``{"jkt": ...}`` of a
        DPoP key, or None): every registered generator takes ``confirmation``, and one that
        makes self-contained tokens puts it in them."""
        generate = self._token_generators.get(grant_type) or self._token_generators["default"]
        return generate(grant_type=grant_type, client=client, user=user, scope=scope, expires_in=expires_in,
                        include_refresh_token=include_refresh_token, confirmation=confirmation)

    def handle_response(self, status_code, payload, headers):
        """Authlib's: a JSON payload encoded as ``flask.json.dumps`` encodes it, answered by
        ``answer_maker`` (Flask's response)."""
        if isinstance(payload, dict):
            payload = _json(payload)
        return answer_maker.get()(payload, status=status_code, headers=headers)

    def authenticate_client(self, request, methods, endpoint="token"):
        return client_auth.authenticate(super().authenticate_client, request, methods, endpoint)

    def validate_requested_scope(self, scope):
        """Scopes we do not offer are left out of the grant rather than refused
        (RFC 6749 section 3.3); the token response names the granted scope."""
        return None

    def create_error_response(self, error):
        """An authorization error as a response (to the client's redirect URI when known),
        named by issuer like the responses Authlib creates."""
        response = self.handle_error_response(None, error)
        self.execute_hook("after_create_authorization_response", response)
        return response


# (grant, extensions), in the order Authlib tries them.
GRANTS = [
    (AuthorizationCodeGrant, lambda: [PKCE(required=True), IdToken()]),
    (RefreshTokenGrant, lambda: [IdToken()]),
    (ClientCredentialsGrant, list),
    (ConnectorPasswordGrant, list),
]
ENDPOINTS = [IdpIntrospectionEndpoint, IdpRevocationEndpoint, IdpEndSessionEndpoint, par.PushedAuthorizationEndpoint]

authorization = IdpAuthorizationServer()
require_oauth = BearerProtector()


def init_oauth(app) -> None:
    app.config["OAUTH2_SCOPES_SUPPORTED"] = SCOPES
    authorization.init_app(app, query_client=query_client, save_token=tokens.save_token)
    authorization.register_token_generator("default", tokens.generate_bearer_token)
    if not authorization._token_grants:
        for grant, extensions in GRANTS:
            authorization.register_grant(grant, extensions())
        authorization.register_grant(UnsupportedResponseType)
        authorization.register_client_auth_method(client_auth.PrivateKeyJWT.CLIENT_AUTH_METHOD, client_auth.PrivateKeyJWT())
        authorization.register_client_auth_method("client_secret_basic", client_auth.authenticate_secret_basic)
        for endpoint in ENDPOINTS:
            authorization.register_endpoint(endpoint)
        authorization.register_endpoint(IdpUserInfoEndpoint(resource_protector=require_oauth))
        authorization.register_extension(Issuer())
        authorization.register_extension(par.PushedRequests())
        require_oauth.register_token_validator(tokens.TokenValidator())
        require_oauth.register_token_validator(tokens.DPoPTokenValidator())
