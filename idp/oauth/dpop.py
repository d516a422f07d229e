"""DPoP (RFC 9449): the proofs checked at the token, PAR and userinfo endpoints, the server's
nonces, and the binding of tokens to a proof's key.

A token request with a proof gets tokens bound to the proof's key: its thumbprint (RFC 7638,
``jkt``) is handed to the token generator as the confirmation ``{"jkt": ...}`` (RFC 7800
``cnf``, whatever the access token's format) and stored with the token. A bound access token
is used only with the DPoP scheme and a proof of that key naming it (``ath``); a public
client's bound refresh token only with a proof of that key. A code is bound when the
authorization request named a key (``dpop_jkt``, or a proof at PAR).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from flask import current_app
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

from .. import clock
from ..models import UsedDpopProof
from ..services import single_use
from ..services.crypto import derive_key, derive_keys, hmac_sha256, token_hash
from .supported import DPOP_ALGORITHMS as ALGORITHMS

PROOF_TYPE = "dpop+jwt"
MAX_PROOF_LENGTH = 8 * 1024
MAX_JTI_LENGTH = 256
NONCE_PURPOSE = "dpop-nonce"
JKT_LENGTH = 43  # base64url of a SHA-256 digest


class _ProofRegistry(JWSRegistry):
    # The header carries the public key: an RSA key of 4096 bits takes about 1.1 kB.
    max_header_length = 2048


REGISTRY = _ProofRegistry(algorithms=ALGORITHMS, strict_check_header=False)


class DPoPError(OAuth2Error):
    """A refused proof: 400 at the token and PAR endpoints, and at a resource (userinfo) a 401
    with a DPoP challenge (section 7.1)."""

    def __init__(self, description=None, *, resource: bool = False):
        super().__init__(description, status_code=401 if resource else None)
        self.resource = resource

    def get_headers(self):
        headers = super().get_headers()
        if self.resource:
            headers.append(("WWW-Authenticate", challenge(self.error, self.get_error_description())))
        return headers


class InvalidDPoPProof(DPoPError):
    error = "invalid_dpop_proof"


class UseDPoPNonce(DPoPError):
    """The proof lacks the server's current nonce: here is one (section 8)."""

    error = "use_dpop_nonce"
    description = "Send a DPoP proof with the nonce in the DPoP-Nonce header."

    def get_headers(self):
        return super().get_headers() + [("DPoP-Nonce", nonce())]


class InvalidDPoPToken(DPoPError):
    """An access token refused at a resource for its DPoP binding (always a 401 and a DPoP challenge)."""

    error = "invalid_token"

    def __init__(self, description=None):
        super().__init__(description, resource=True)


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``WWW-Authenticate`` value of the DPoP scheme."""
    params = [f'error="{error}"'] if error else []
    if description:
        params.append(f'error_description="{description}"')
    params.append(f'algs="{" ".join(ALGORITHMS)}"')
    return "DPoP " + ", ".join(params)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- server nonces (section 8) -------------------------------------------------------------


def _nonce_for(period: int, key: bytes) -> str:
    return f"{period}.{_b64(hmac_sha256(key, f'{NONCE_PURPOSE}:{period}'.encode())[:16])}"


def _period() -> int:
    return clock.timestamp() // current_app.config["DPOP_NONCE_LIFETIME"]


def nonce() -> str:
    """The nonce of the current period. Stateless (a MAC of the period under a key derived
    from IDP_SECRET_KEY), so every instance makes and accepts the same nonces."""
    return _nonce_for(_period(), derive_key(NONCE_PURPOSE))


def _nonce_current(value) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    period, _, _ = value.partition(".")
    if not period.isdigit() or int(period) not in (_period(), _period() - 1):
        return False
    return any(hmac.compare_digest(value, _nonce_for(int(period), key)) for key in derive_keys(NONCE_PURPOSE))


# -- proofs (section 4.3) ------------------------------------------------------------------


def _same_target(htu, expected: str) -> bool:
    """``htu`` names ``expected`` (scheme, host, port and path; query and fragment ignored),
    after the normalisations of RFC 3986 section 6.2.2 and 6.2.3 that matter here."""
    def normal(uri):
        parts = urlsplit(uri)
        default = {"http": 80, "https": 443}.get(parts.scheme.lower())
        port = "" if parts.port in (None, default) else f":{parts.port}"
        return parts.scheme.lower(), (parts.hostname or "") + port, parts.path or "/"

    try:
        return isinstance(htu, str) and len(htu) <= 2048 and normal(htu) == normal(expected)
    except ValueError:
        return False


def _proof_key(value: str):
    """The public key in the proof's header, after the header's own checks."""
    try:
        header = jws.extract_compact(value.encode(), registry=REGISTRY).headers()
    except (JoseError, ValueError, TypeError):
        raise InvalidDPoPProof("The DPoP proof is not a JWS.") from None
    if header.get("typ") != PROOF_TYPE:
        raise InvalidDPoPProof(f"The DPoP proof's typ must be {PROOF_TYPE}.")
    if header.get("alg") not in ALGORITHMS:
        raise InvalidDPoPProof(f"The DPoP proof's alg must be one of {', '.join(ALGORITHMS)}.")
    if not isinstance(header.get("jwk"), dict):
        raise InvalidDPoPProof("The DPoP proof has no jwk.")
    try:
        key = JWKRegistry.import_key(header["jwk"])
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidDPoPProof("The DPoP proof's jwk is not a key.") from None
    if key.is_private or key.key_type == "oct":
        raise InvalidDPoPProof("The DPoP proof's jwk must be a public key.")
    return header["alg"], key


def verify(request, *, access_token: str | None = None, nonce_required: bool = False,
           resource: bool = False) -> str | None:
    """The thumbprint of the key that signed the request's DPoP proof, or None when there
    is none. The proof must name this request (``htm``, ``htu``: the issuer's URL of the
    path), be fresh (``iat`` within DPOP_PROOF_WINDOW, a current server nonce where one is
    asked or sent), name ``access_token`` (``ath``) at a resource, and be new: its ``jti``
    is spent here, last, so a proof refused for its nonce can be made again."""
    values = request.headers.getlist("DPoP")
    if not values:
        return None

    def refuse(description):
        return InvalidDPoPProof(description, resource=resource)

    if len(values) > 1:
        raise refuse("Send one DPoP proof.")
    value = values[0]
    if len(value) > MAX_PROOF_LENGTH or value.count(".") != 2:
        raise refuse("The DPoP proof is not a JWS.")
    try:
        alg, key = _proof_key(value)
        claims = jwt.decode(value, key, algorithms=[alg], registry=REGISTRY).claims
    except InvalidDPoPProof as err:
        raise refuse(err.description) from None
    except (JoseError, ValueError, TypeError, KeyError):
        raise refuse("The DPoP proof's signature does not verify, or its claims are no JSON object.") from None
    if not isinstance(claims, dict):
        raise refuse("The DPoP proof has no claims.")
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise refuse("The DPoP proof needs a jti.")
    if claims.get("htm") != request.method:
        raise refuse("The DPoP proof's htm is not this request's method.")
    expected = current_app.config["ISSUER"] + urlsplit(request.uri).path
    if not _same_target(claims.get("htu"), expected):
        raise refuse("The DPoP proof's htu is not this endpoint.")
    window = current_app.config["DPOP_PROOF_WINDOW"]
    if isinstance(iat, bool) or not isinstance(iat, int) or abs(clock.timestamp() - iat) > window:
        raise refuse("The DPoP proof's iat is not within the accepted window.")
    if access_token is not None:
        ath = _b64(hashlib.sha256(access_token.encode()).digest())
        if not isinstance(claims.get("ath"), str) or not hmac.compare_digest(claims["ath"], ath):
            raise refuse("The DPoP proof's ath does not match the access token.")
    if "nonce" in claims or nonce_required:
        if not _nonce_current(claims.get("nonce")):
            raise UseDPoPNonce(resource=resource)
    jkt = key.thumbprint()
    if not single_use.first_use(UsedDpopProof, token_hash(f"{jkt}\x00{jti}"), clock.from_timestamp(iat + window)):
        raise refuse("The DPoP proof was used before.")
    return jkt


# -- the authorization server --------------------------------------------------------------


def at_authorization_server(request) -> str | None:
    """The proof of a token or PAR request (``verify`` with the server's nonce policy); None at
    once for a request without one, before the policy is looked up."""
    if request.headers.get("DPoP") is None:
        return None
    return verify(request, nonce_required=current_app.config["DPOP_NONCE_REQUIRED"])


def confirmation(jkt: str | None) -> dict | None:
    """What a token bound to ``jkt`` confirms (RFC 7800 ``cnf``): for the token generator."""
    return {"jkt": jkt} if jkt else None


def valid_jkt(value) -> bool:
    """A key thumbprint as the ``dpop_jkt`` authorization parameter carries it."""
    return isinstance(value, str) and len(value) == JKT_LENGTH and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in value)


def check_code(code, jkt: str | None) -> None:
    """A code bound to a key (section 10) is redeemed only with a proof of that key."""
    if code.dpop_jkt and jkt != code.dpop_jkt:
        raise InvalidGrantError("This code is bound to a DPoP key: send a DPoP proof of that key.")


def check_refresh(token, client, jkt: str | None) -> None:
    """A public client's refresh token bound to a key is used only with a proof of that key
    (section 5); a confidential client's is bound to its authentication instead."""
    if client.is_public and token.dpop_jkt and jkt != token.dpop_jkt:
        raise InvalidGrantError("This refresh token is bound to a DPoP key: send a DPoP proof of that key.")


# -- resources: userinfo (section 7) -------------------------------------------------------


def check_bearer_use(token) -> None:
    """A bound access token is no bearer token: sent as one, it is refused."""
    if token is not None and token.dpop_jkt:
        raise InvalidDPoPToken("This access token is bound to a DPoP key: use the DPoP scheme with a proof.")


def check_resource_request(token, access_token: str, request) -> None:
    """A request to a resource with the DPoP scheme: a valid proof naming the token, of the
    key the token is bound to."""
    if token is None or token.is_expired() or token.is_revoked():
        raise InvalidDPoPToken("The access token is expired, revoked or unknown.")
    jkt = verify(request, access_token=access_token, resource=True)
    if jkt is None:
        raise InvalidDPoPProof("The DPoP scheme needs a DPoP proof.", resource=True)
    if not token.dpop_jkt:
        raise InvalidDPoPToken("This access token is not bound to a DPoP key: use the Bearer scheme.")
    if not hmac.compare_digest(jkt, token.dpop_jkt):
        raise InvalidDPoPToken("The DPoP proof's key is not the one this access token is bound to.")


def introspection(token) -> dict:
    """What introspection says of a token's binding (section 6.2)."""
    if not token.dpop_jkt:
        return {"token_type": "Bearer"}
    return {"token_type": "DPoP", "cnf": {"jkt": token.dpop_jkt}}


def response_nonce(response) -> None:
    """A fresh nonce with each answer to a request that carried a proof, so clients keep
    current without a refusal first."""
    response.headers["DPoP-Nonce"] = nonce()

