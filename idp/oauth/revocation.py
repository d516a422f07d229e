"""RFC 7009 token revocation."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint

from ..services import tokens as token_service
from . import machine_tokens, tokens
from .supported import ANY_AUTH_METHODS


class IdpRevocationEndpoint(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ANY_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        found = tokens.find_by_hint(token_string, token_type_hint)
        return found[0] if found else None

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
            token_service.revoke_family(token.grant_id)
        else:
            token_service.revoke_token(token.id)
