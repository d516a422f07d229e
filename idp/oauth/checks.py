"""The checks an authorization request passes beyond Authlib's validation, one small
function each, run in order by `run` (node-oidc-provider's actions/authorization)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError

from ..models.oauth import requested_acr
from ..services import keys
from . import dpop
from .supported import ACR_VALUES, ID_TOKEN_ALGORITHMS, NONCE_MAX_LENGTH, PROMPTS_ACCEPTED, RESPONSE_MODES


@dataclass
class AuthorizationRequest:
    """What the checks established about a request that Authlib accepted."""

    params: dict
    grant: object
    response_mode: str = "query"
    prompts: set[str] = field(default_factory=set)
    max_age: int | None = None
    hint_sub: str | None = None  # the `sub` of a valid id_token_hint
    # The `acr` values asked for (in order of preference) and whether they are essential.
    acr_wanted: list[str] = field(default_factory=list)
    acr_essential: bool = False

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    def error(self, err_cls, description: str | None = None):
        """The error, addressed to the client's redirect URI with the request's state."""
        kwargs = {"redirect_uri": self.grant.redirect_uri, "state": self.state}
        return err_cls(description, **kwargs) if description else err_cls(**kwargs)


def response_mode_of(params: dict) -> str:
    """The response mode to answer in; an unsupported one is answered in the query."""
    mode = params.get("response_mode") or "query"
    return mode if mode in RESPONSE_MODES else "query"


def check_request_object(req: AuthorizationRequest) -> None:
    """Request objects (OpenID Connect Core section 6) are not supported, and discovery says
    so; one is refused rather than ignored, since its parameters would override the query's.
    A request_uri of a pushed request (RFC 9126) was replaced by its parameters before the
    checks; any other is a request object by reference."""
    if "request" in req.params:
        raise req.error(RequestNotSupportedError, "Request objects ('request') are not supported.")
    if "request_uri" in req.params:
        raise req.error(RequestURINotSupportedError, "Request objects by reference ('request_uri') are not supported.")


class UnmetAuthenticationRequirements(OAuth2Error):
    """OpenID Connect Unmet Authentication Requirements 1.0."""

    error = "unmet_authentication_requirements"


def _claim_request_valid(value) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict) or not isinstance(value.get("essential", False), bool):
        return False
    return "values" not in value or isinstance(value["values"], list)


def check_claims(req: AuthorizationRequest) -> None:
    """The `claims` parameter (OpenID Connect Core 5.5), well-formed. Claims are released per
    granted scope, in the ID token and at userinfo alike, and those it asks for by name where
    it asks for them (claims.requested); an essential `acr` is check_acr's."""
    raw = req.params.get("claims")
    if raw is None:
        return
    try:
        claims = json.loads(raw)
    except ValueError:
        claims = None
    members = [claims.get(m) for m in ("userinfo", "id_token")] if isinstance(claims, dict) else None
    if members is None or not all(
        m is None or (isinstance(m, dict) and all(_claim_request_valid(v) for v in m.values())) for m in members
    ):
        raise req.error(InvalidRequestError, "Invalid 'claims' parameter.")


def check_acr(req: AuthorizationRequest) -> None:
    """The `acr` the client asks for: voluntary values pick which value of those the sign-in
    meets the ID token names; an essential one that no sign-in here can meet is refused up
    front (one that this session does not meet asks for a new sign-in: interaction)."""
    req.acr_wanted, req.acr_essential = requested_acr(req.params)
    if req.acr_essential and req.acr_wanted and not set(req.acr_wanted) & set(ACR_VALUES):
        raise req.error(UnmetAuthenticationRequirements, "The essential 'acr' cannot be met.")


def check_response_mode(req: AuthorizationRequest) -> None:
    if (req.params.get("response_mode") or "query") not in RESPONSE_MODES:
        raise req.error(InvalidRequestError, "Unsupported 'response_mode'.")
    req.response_mode = response_mode_of(req.params)


def check_nonce(req: AuthorizationRequest) -> None:
    nonce = req.params.get("nonce") or ""
    if len(nonce) > NONCE_MAX_LENGTH or "\x00" in nonce:
        raise req.error(InvalidRequestError, "The 'nonce' is too long or contains a NUL character.")


def check_prompt(req: AuthorizationRequest) -> None:
    prompts = set(req.params.get("prompt", "").split())
    if not prompts <= PROMPTS_ACCEPTED or ("none" in prompts and len(prompts) > 1):
        raise req.error(InvalidRequestError, "Invalid 'prompt'.")
    req.prompts = prompts


def check_max_age(req: AuthorizationRequest) -> None:
    value = req.params.get("max_age")
    if value in (None, ""):
        return
    try:
        req.max_age = int(value)
    except ValueError:
        req.max_age = -1
    if req.max_age < 0:
        raise req.error(InvalidRequestError, "Invalid 'max_age'.")


def check_id_token_hint(req: AuthorizationRequest) -> None:
    """An ID token we issued (its signature checked, its expiry not: it names who the
    client believes is signed in)."""
    hint = req.params.get("id_token_hint")
    if not hint:
        return
    try:
        token = jwt.decode(hint, keys.public_keyset(), algorithms=ID_TOKEN_ALGORITHMS)
    except (JoseError, ValueError):
        raise req.error(InvalidRequestError, "Invalid 'id_token_hint'.") from None
    if token.claims.get("iss") != current_app.config["ISSUER"] or not token.claims.get("sub"):
        raise req.error(InvalidRequestError, "Invalid 'id_token_hint'.")
    req.hint_sub = token.claims["sub"]


def check_dpop_jkt(req: AuthorizationRequest) -> None:
    """RFC 9449 section 10: the key the code will be bound to, by its thumbprint."""
    if "dpop_jkt" in req.params and not dpop.valid_jkt(req.params["dpop_jkt"]):
        raise req.error(InvalidRequestError, "Invalid 'dpop_jkt': the base64url SHA-256 thumbprint of a key.")


CHECKS = [check_request_object, check_claims, check_acr, check_response_mode, check_nonce, check_prompt, check_max_age,
          check_id_token_hint, check_dpop_jkt]


def run(params: dict, grant) -> AuthorizationRequest:
    """Every check in order; the first that fails raises its OAuth2Error."""
    req = AuthorizationRequest(params=params, grant=grant)
    for check in CHECKS:
        check(req)
    return req
