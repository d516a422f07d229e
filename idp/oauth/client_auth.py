"""Client authentication at the token, introspection and revocation endpoints: one method
per request (RFC 6749 section 2.3), the method the client registered, failed
authentications throttled per client in Flask-Limiter's storage, and private_key_jwt."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import urllib.request

from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app
from flask import request as flask_request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .. import clock
from ..kept import Kept
from ..models import UsedClientAssertion
from ..services import single_use, throttles
from ..services.crypto import app_config, token_hash

log = logging.getLogger(__name__)

NAMESPACE = "client-auth-failure"
# Client ids are not secret (they travel in authorization URLs): a limit per client id
# alone would let anyone shut a client out of its token endpoint, so the tight limit
# counts per client and address, and a looser one per client id from anywhere.
PER_ADDRESS_SETTING = "RATELIMIT_CLIENT_AUTH_FAILURES_PER_ADDRESS"
PER_CLIENT_SETTING = "RATELIMIT_CLIENT_AUTH_FAILURES_PER_CLIENT"


class ClientAuthenticationThrottled(InvalidClientError):
    """Too many failures for this client: refused whatever the credentials, so that
    guessing on gains nothing."""

    status_code = 429
    RETRY_AFTER_SECONDS = 60

    def get_error_description(self):
        return "Too many failed client authentications; try again later."

    def get_headers(self):
        return super().get_headers() + [("Retry-After", str(self.RETRY_AFTER_SECONDS))]


def _methods_presented(request) -> list[str]:
    presented = []
    if request.headers.get("Authorization", "")[:6].lower() == "basic ":
        presented.append("client_secret_basic")
    form = request.form
    if "client_secret" in form:
        presented.append("client_secret_post")
    if "client_assertion" in form or "client_assertion_type" in form:
        presented.append("client_assertion")
    return presented


def claimed_client_id(request) -> str | None:
    """The client a request to a client-authenticated endpoint says it comes from (before
    it is authenticated): the Basic user or the form's client_id."""
    client_id, _ = extract_basic_authorization(request.headers)
    client_id = client_id or request.form.get("client_id")
    return client_id if isinstance(client_id, str) and 0 < len(client_id) <= 64 else None


def _address(request) -> str:
    return getattr(request, "client_ip", None) or flask_request.remote_addr or ""


def _limits(client_id: str, address: str):
    return [(f"{client_id}|{address}", PER_ADDRESS_SETTING), (client_id, PER_CLIENT_SETTING)]


def authenticate(authenticate_client, request, methods, endpoint):
    """``authenticate_client`` (Authlib's), after refusing a request that presents more
    than one method or comes for a throttled client; its failures are counted."""
    if len(_methods_presented(request)) > 1:
        raise InvalidRequestError("Use one client authentication method per request.")
    # Nothing is counted or checked with rate limits off (throttles.allow and exhausted say so).
    client_id = claimed_client_id(request) if app_config()["RATELIMIT_ENABLED"] else None
    limits = _limits(client_id, _address(request)) if client_id else []
    if any(throttles.exhausted(NAMESPACE, key, setting, fail_open=True) for key, setting in limits):
        raise ClientAuthenticationThrottled()
    try:
        return authenticate_client(request, methods, endpoint)
    except InvalidClientError:
        for key, setting in limits:
            throttles.allow(NAMESPACE, key, setting, fail_open=True)  # secrets are too long to guess
        raise


# -- client_secret_basic ---------------------------------------------------------------

# Authorization headers whose secret was verified, under a keyed hash (the key made per process,
# so that what is kept reveals nothing of the header), each with its client and the secret hash
# it was verified against. A client sends the same header on every request; verifying it again
# (decoding the header, hashing the secret) was a tenth of what a client-credentials request cost.
_VERIFIED = Kept(1024)
_VERIFIED_KEY = secrets.token_bytes(32)


def authenticate_secret_basic(query_client, request):
    """Authlib's ``client_secret_basic``: the client of the Authorization header when its secret is
    the client's. A header verified before passes while the client (as ``query_client`` serves it)
    still has the secret hash it was verified against: a rotated or removed secret is verified
    again, and a wrong one is never kept."""
    header = request.headers.get("Authorization")
    key = None
    if header:
        key = hashlib.blake2b(header.encode(errors="surrogatepass"), key=_VERIFIED_KEY).digest()
        verified = _VERIFIED.get(key)
        if verified is not None:
            client = query_client(verified[0])
            if client is not None and client.secret_hash == verified[1]:
                return client
    client = authenticate_client_secret_basic(query_client, request)
    if client is not None and key is not None:
        _VERIFIED.keep(key, (client.get_client_id(), client.secret_hash))
    return client


# -- private_key_jwt (RFC 7523 section 2.2, OpenID Connect Core section 9) ----------------

ASSERTION_ALGORITHMS = ["RS256", "PS256", "ES256"]
# An assertion is single-use and remembered until it expires; one that claims to live
# longer than this is refused, so that what must be remembered stays bounded.
ASSERTION_MAX_LIFETIME = 3600
JWKS_CACHE_SECONDS = 300
JWKS_MAX_BYTES = 64 * 1024
_jwks_cache: dict[str, tuple[float, dict]] = {}


def _fetch_jwks(uri: str) -> dict:
    now = time.monotonic()
    hit = _jwks_cache.get(uri)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        with urllib.request.urlopen(uri, timeout=5) as response:  # noqa: S310 (an operator-registered URL)
            data = json.loads(response.read(JWKS_MAX_BYTES + 1)[:JWKS_MAX_BYTES])
    except (OSError, ValueError):
        log.warning("jwks_uri %s could not be read", uri)
        raise InvalidClientError(description="The client's keys could not be read.") from None
    _jwks_cache[uri] = (now + JWKS_CACHE_SECONDS, data)
    return data


def client_keys(client) -> KeySet:
    data = client.jwks if client.jwks else _fetch_jwks(client.jwks_uri) if client.jwks_uri else None
    if data is None:
        raise InvalidClientError(description="The client has no registered keys.")
    try:
        return KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidClientError(description="The client's keys are not a valid JWKS.") from None


def remember_assertion(client_id: str, jti, exp) -> bool:
    """False when this client's assertion with this jti was seen before (a replay). Committed
    at once: the assertion is spent whatever becomes of the request."""
    if not isinstance(jti, str) or not jti or len(jti) > 256 or not isinstance(exp, int):
        return False
    if exp > clock.timestamp() + ASSERTION_MAX_LIFETIME:
        raise InvalidClientError(description="The client assertion claims to live too long.")
    return single_use.first_use(UsedClientAssertion, token_hash(f"{client_id}\x00{jti}"), clock.from_timestamp(exp))


class PrivateKeyJWT(JWTBearerClientAssertion):
    """Authlib's RFC 7523 client assertion, with the client's registered keys, a fixed set
    of asymmetric algorithms (client_secret_jwt is not offered) and single-use jti."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self):
        issuer = current_app.config["ISSUER"]
        return [issuer, issuer + "/token"]

    def resolve_client_public_key(self, client):
        return client_keys(client)

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError):
            raise InvalidClientError(description="The client assertion is not valid.") from None
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims, jti):
        return remember_assertion(claims["sub"], jti, claims.get("exp"))
