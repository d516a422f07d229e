"""The OpenID Provider Metadata (discovery document), built from what is registered and
supported, so that the document cannot promise what the server does not do."""

from __future__ import annotations

from .introspection import IdpIntrospectionEndpoint
from .revocation import IdpRevocationEndpoint
from .client_auth import ASSERTION_ALGORITHMS
from .server import GRANTS
from .supported import (
    ACR_VALUES,
    CLAIMS,
    CODE_CHALLENGE_METHODS,
    DPOP_ALGORITHMS,
    ID_TOKEN_ALGORITHMS,
    PROMPTS,
    RESPONSE_MODES,
    SCOPES,
)


def _union(lists) -> list[str]:
    seen: list[str] = []
    for values in lists:
        seen += [v for v in values if v not in seen]
    return seen


def metadata(issuer: str, languages: list[str]) -> dict:
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "userinfo_endpoint": issuer + "/userinfo",
        "jwks_uri": issuer + "/jwks.json",
        "introspection_endpoint": issuer + "/introspect",
        "revocation_endpoint": issuer + "/revoke",
        "end_session_endpoint": issuer + "/logout",
        "pushed_authorization_request_endpoint": issuer + "/par",
        "scopes_supported": SCOPES,
        "response_types_supported": _union(sorted(getattr(grant, "RESPONSE_TYPES", ())) for grant, _ in GRANTS),
        "response_modes_supported": RESPONSE_MODES,
        "grant_types_supported": [grant.GRANT_TYPE for grant, _ in GRANTS],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ID_TOKEN_ALGORITHMS,
        "token_endpoint_auth_methods_supported": _union(grant.TOKEN_ENDPOINT_AUTH_METHODS for grant, _ in GRANTS),
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": IdpIntrospectionEndpoint.CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": IdpRevocationEndpoint.CLIENT_AUTH_METHODS,
        "code_challenge_methods_supported": CODE_CHALLENGE_METHODS,
        "claims_supported": CLAIMS,
        "acr_values_supported": ACR_VALUES,
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        # A client may be registered to require PAR; the server does not require it of all.
        "require_pushed_authorization_requests": False,
        "dpop_signing_alg_values_supported": DPOP_ALGORITHMS,
        "ui_locales_supported": languages,
        "prompt_values_supported": PROMPTS,
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
