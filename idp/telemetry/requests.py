"""What a client-authenticated request tells its log line and the metrics, on either path that
answers it (the Flask route, or web/lean.py below Flask's dispatch); ops/requests.py writes the
log line from what it leaves in the environ."""

from __future__ import annotations

from urllib.parse import unquote

from werkzeug.datastructures import Authorization

from . import metrics

ENDPOINT_KEY = "idp.endpoint"
CLIENT_ID_KEY = "idp.client_id"


def claimed_client_id(form, authorization: str | None) -> str | None:
    """The client a client-authenticated request names, for its log line: the parsed form's
    ``client_id``, else the user of a Basic ``authorization`` header; at most 100 characters."""
    value = form.get("client_id") if "client_id" in form else None  # a miss would raise and catch inside
    if not value and authorization:
        try:
            auth = Authorization.from_header(authorization)
        except (ValueError, UnicodeError):  # a malformed header was answered already; it names no client
            auth = None
        if auth is not None and auth.type == "basic" and auth.username:
            value = unquote(auth.username)  # RFC 6749 2.3.1: form-encoded in Basic
    return value[:100] if value else None


def note_protocol_request(environ, endpoint: str, form, status: int) -> None:
    """What the request log and the metrics know of a client-authenticated request that was
    answered (``endpoint``, the client it named, a token issued)."""
    environ[ENDPOINT_KEY] = endpoint
    environ[CLIENT_ID_KEY] = claimed_client_id(form, environ.get("HTTP_AUTHORIZATION"))
    if endpoint == "oauth.token" and status == 200:
        metrics.token_issued(form.get("grant_type"))
