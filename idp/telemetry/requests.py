"""What a client-authenticated request tells its log line and the metrics, on either path that
answers it (the Flask route, or web/lean.py below Flask's dispatch); ops/requests.py writes the
log line from what it leaves in the environ."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from . import metrics

ENDPOINT_KEY = "idp.endpoint"
CLIENT_ID_KEY = "idp.client_id"


def claimed_client_id(form, authorization: str | None) -> str | None:
    """The client a client-authenticated request names, for its log line: the parsed form's
    ``client_id``, else the user of a Basic ``authorization`` header; at most 100 characters."""
    value = form.get("client_id") if "client_id" in form else None  # a miss would raise and catch inside
    if not value and authorization:
        value = _basic_user(authorization)
    return value[:100] if value else None


def _basic_user(authorization: str) -> str | None:
    """The user of a Basic ``authorization`` header, form-decoded (RFC 6749 2.3.1), as Werkzeug's
    ``Authorization.from_header`` reads it (without the object); None for any other scheme or a
    malformed header (answered already: it names no client)."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user = base64.b64decode(rest.strip(" \t"), validate=True).decode().partition(":")[0]
    except (ValueError, UnicodeError):  # not base64 (binascii.Error), not ASCII, not UTF-8
        return None
    return unquote(user) if user else None


def note_protocol_request(environ, endpoint: str, form, status: int) -> None:
    """What the request log and the metrics know of a client-authenticated request that was
    answered (``endpoint``, the client it named, a token issued)."""
    environ[ENDPOINT_KEY] = endpoint
    environ[CLIENT_ID_KEY] = claimed_client_id(form, environ.get("HTTP_AUTHORIZATION"))
    if endpoint == "oauth.token" and status == 200:
        metrics.token_issued(form.get("grant_type"))
