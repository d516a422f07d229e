"""OpenID Connect Core: the ID token issued with the code grant's tokens, and userinfo."""

from __future__ import annotations

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oidc.core import OpenIDToken, UserInfoEndpoint
from authlib.oidc.core.util import create_half_hash
from flask import current_app

from .. import clock
from ..models.oauth import acr_for
from ..services import keys
from . import claims as released
from .supported import ID_TOKEN_ALGORITHMS


class IdToken(OpenIDToken):
    """ID tokens: RS256 with the current key's `kid`, our issuer, `sid`, `auth_time`; with
    the code grant's tokens and again with each refresh (OpenID Connect Core 12.2).

    Only the token half of Authlib's OpenIDCode: prompt is decided by the authorize
    checks, which know the SSO session, and a nonce is not checked for replay (the code
    it travels with is single-use), so neither authorize hook is registered.

    The claims are made by Authlib's hooks (below); the token is signed by the current key's
    kept signer (``keys.sign_jwt``), which makes the same bytes as joserfc's ``jwt.encode``
    without its per-call checks of a header and key that never change."""

    def encode_id_token(self, token, request):
        claims = self.get_compatible_claims(request)
        if request.authorization_code:
            claims.update(self.get_authorization_code_claims(request.authorization_code))
        if access_token := token.get("access_token"):
            claims["at_hash"] = create_half_hash(access_token, ID_TOKEN_ALGORITHMS[0]).decode("utf-8")
        claims.update(self.generate_user_info(request.user, token["scope"]))
        return keys.sign_jwt(claims)

    def resolve_client_private_key(self, client):
        return keys.signing_key()[1]

    def get_client_algorithm(self, client):
        return ID_TOKEN_ALGORITHMS[0]

    def get_encode_header(self, client):
        return {"alg": ID_TOKEN_ALGORITHMS[0], "kid": keys.signing_key()[0], "typ": "JWT"}

    def get_client_claims(self, client):
        now = clock.timestamp()
        return {
            "iss": current_app.config["ISSUER"],
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + current_app.config["ID_TOKEN_LIFETIME"],
        }

    def get_compatible_claims(self, request):
        claims = super().get_compatible_claims(request)
        previous = request.refresh_token
        family = request.authorization_code.grant if request.authorization_code is not None else previous.grant
        if names := released.asked_for(family, "id_token"):
            claims.update(released.user_info(request.user, "", names))
        if request.authorization_code is None and previous is not None:
            # A refresh is no sign-in: the same sub, and the auth_time, sid, amr and acr of the
            # sign-in the family started with (no nonce: OpenID Connect Core 12.2).
            claims.pop("auth_time", None)
            if previous.auth_time:
                claims["auth_time"] = previous.auth_time
            if previous.session_id:
                claims["sid"] = previous.session_id
            if previous.grant.amr:
                claims["amr"] = list(previous.grant.amr)
                if acr := acr_for(previous.grant.amr):
                    claims["acr"] = acr
        return claims

    def get_authorization_code_claims(self, authorization_code):
        result = super().get_authorization_code_claims(authorization_code)
        if authorization_code.session_id:
            result["sid"] = authorization_code.session_id
        return result

    def generate_user_info(self, user, scope):
        return released.user_info(user, scope)


class IdpUserInfoEndpoint(UserInfoEndpoint):
    def __call__(self, request):
        """Claims of the person behind the token; a machine token (no person) is refused."""
        token = self.resource_protector.acquire_token("openid")
        user = token.get_user()
        if user is None:
            raise InvalidTokenError()
        info = released.user_info(user, token.scope, released.asked_for(getattr(token, "grant", None), "userinfo"))
        return 200, info, default_json_headers

    def get_issuer(self):
        return current_app.config["ISSUER"]

    def generate_user_info(self, user, scope):
        return released.user_info(user, scope)

    def resolve_private_key(self):
        return keys.signing_key()[1]
