"""RFC 7662 token introspection: a client's own tokens, and any token for a resource server."""

from __future__ import annotations

from typing import NamedTuple

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from .. import clock
from ..services.crypto import app_config
from . import dpop, tokens
from .supported import CONFIDENTIAL_AUTH_METHODS


class Presented(NamedTuple):
    """A token found for the string presented, and which of its two values that string was."""

    token: object
    kind: str  # "access_token" or "refresh_token"

    def is_expired(self):
        return self.token.is_expired()

    def is_revoked(self):
        return self.token.is_revoked()


class IdpIntrospectionEndpoint(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        found = tokens.find_by_hint(token_string, token_type_hint)
        if found is None:
            return None
        return Presented(*found)

    def check_permission(self, presented, client, request):
        # A client learns about its own tokens only (others get {"active": false}); a
        # resource server, the API the tokens are presented to, about every token.
        return client.resource_server or presented.token.check_client(client)

    def create_introspection_payload(self, presented):
        if presented is not None and presented.kind == "refresh_token":
            # A refresh token outlives its access token: its own expiry and rotation count.
            if not presented.token.is_refresh_usable():
                return {"active": False}
            return self.introspect_token(presented)
        return super().create_introspection_payload(presented)

    def introspect_token(self, presented):
        token, kind = presented.token, presented.kind
        expires_at = token.expires_at if kind == "access_token" else token.refresh_expires_at or token.expires_at
        payload = {
            "active": True,
            "client_id": token.client_id,
            "token_type": "refresh_token",
            "scope": token.scope,
            "iat": clock.to_timestamp(token.issued_at),
            "exp": clock.to_timestamp(expires_at),
            "iss": app_config()["ISSUER"],
        }
        if kind == "access_token":
            # A bound token's key, for the resource server to check the proof against.
            payload.update(dpop.introspection(token))
        if token.account_id is not None:  # a person's token (the row goes with the account)
            payload["sub"] = token.account_id
            payload["aud"] = token.client_id
        elif getattr(token, "connector_id", None) is not None:
            payload["sub"] = token.connector.username
            payload["administration"] = token.connector.administration_id
        else:
            payload["sub"] = token.client_id
        return payload
