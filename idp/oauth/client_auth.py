"""Client authentication at the token, introspection and revocation endpoints: one method
per request (RFC 6749 section 2.3), the method the client registered, and failed
authentications throttled per client, in Flask-Limiter's storage."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import request as flask_request

from ..services import throttles

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


def _client_id(request) -> str | None:
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
    client_id = _client_id(request)
    limits = _limits(client_id, _address(request)) if client_id else []
    if any(throttles.exhausted(NAMESPACE, key, setting) for key, setting in limits):
        raise ClientAuthenticationThrottled()
    try:
        return authenticate_client(request, methods, endpoint)
    except InvalidClientError:
        for key, setting in limits:
            throttles.allow(NAMESPACE, key, setting)
        raise
