"""JWT access tokens (RFC 9068) for clients registered with `--access-token-format jwt`: what
such a token says is decided in one function (``claims``), from the facts of the token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError

from ..models.oauth import acr_for
from ..services import keys
from .supported import ID_TOKEN_ALGORITHMS

TYP = "at+jwt"
ALGORITHM = ID_TOKEN_ALGORITHMS[0]


@dataclass(frozen=True)
class AccessTokenFacts:
    """What is known about an access token when it is issued: all that its JWT says."""

    client_id: str
    # A person's sub, a connector user's username, or (client credentials) the client's own id.
    subject: str
    scope: str
    issued_at: int
    expires_in: int
    # The sign-in behind the token, where one is known (people's and connector users' tokens).
    auth_time: int | None = None
    amr: tuple[str, ...] = ()
    # A connector user's administration (the claim its introspection shows too).
    administration: str | None = None
    # The thumbprint of the DPoP key the token is bound to (RFC 9449 section 6.1), if any.
    jkt: str | None = None
    jti: str = field(default_factory=lambda: secrets.token_urlsafe(16))


def claims(facts: AccessTokenFacts, issuer: str) -> dict:
    """The claims of the JWT (RFC 9068 section 2.2). Without resource indicators the audience
    is the client the token was issued to, as introspection says (SECURITY.md has the why)."""
    result = {
        "iss": issuer,
        "sub": facts.subject,
        "aud": facts.client_id,
        "client_id": facts.client_id,
        "iat": facts.issued_at,
        "exp": facts.issued_at + facts.expires_in,
        "jti": facts.jti,
    }
    if facts.scope:
        result["scope"] = facts.scope
    if facts.auth_time is not None:
        result["auth_time"] = facts.auth_time
    if facts.amr:
        result["amr"] = list(facts.amr)
        if acr := acr_for(facts.amr):
            result["acr"] = acr
    if facts.administration is not None:
        result["administration"] = facts.administration
    if facts.jkt is not None:
        result["cnf"] = {"jkt": facts.jkt}
    return result


def encode(facts: AccessTokenFacts) -> str:
    """The token, signed with the provider's current key (the ID tokens' key, in /jwks.json)."""
    kid, key = keys.signing_key()
    header = {"alg": ALGORITHM, "kid": kid, "typ": TYP}
    return jwt.encode(header, claims(facts, current_app.config["ISSUER"]), key, algorithms=[ALGORITHM])


def verify(value: str) -> dict | None:
    """The claims of a JWT access token this provider signed with a key it still publishes,
    or None. Expiry and revocation are for the caller's token object to answer."""
    if not isinstance(value, str) or value.count(".") != 2:
        return None
    try:
        token = jwt.decode(value, keys.public_keyset(), algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    if token.header.get("typ") != TYP or token.claims.get("iss") != current_app.config["ISSUER"]:
        return None
    return token.claims
