"""RFC 7636 (PKCE): S256 only, and required of public clients and of every client not
registered as exempt. Authlib's CodeChallenge does the rest."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from .supported import CODE_CHALLENGE_METHODS


class PKCE(CodeChallenge):
    SUPPORTED_CODE_CHALLENGE_METHOD = CODE_CHALLENGE_METHODS
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") and not data.get("code_challenge_method"):
            client = grant.request.client
            if client.pkce_required or client.is_public:
                raise InvalidRequestError("PKCE is required: send 'code_challenge' with method S256.")
            return None
        # Authlib would take a missing method as its default; we want it named.
        if data.get("code_challenge_method") not in CODE_CHALLENGE_METHODS:
            raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
        return super().validate_code_challenge(grant, redirect_uri)
