"""OpenID Connect RP-Initiated Logout: validating the request. Ending the SSO session is
the logout view's, once the person confirmed."""

from __future__ import annotations

from authlib.oidc.rpinitiated import EndSessionEndpoint

from ..services import keys
from .supported import ID_TOKEN_ALGORITHMS


class IdpEndSessionEndpoint(EndSessionEndpoint):
    def get_server_jwks(self):
        return keys.public_keyset()

    def get_algorithms(self):
        return ID_TOKEN_ALGORITHMS

    def end_session(self, end_session_request):
        pass

    def _is_valid_post_logout_redirect_uri(self, client, post_logout_redirect_uri):
        # As redirect URIs: a native app's loopback URI registered without a port takes any.
        return client.check_post_logout_redirect_uri(post_logout_redirect_uri)
