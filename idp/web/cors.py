"""CORS for the protocol endpoints a browser app calls (/token, /userinfo, /revoke, /par):
for the origins registered for the client a request is for, never a wildcard, errors
included so the app can read them. Discovery and JWKS are open to any origin (they carry
no credential); the pages get no CORS at all.

A preflight names no client, so it is answered for an origin registered for any client;
the request that follows is answered for its client's origins only. A request from an
origin not registered for its client is refused before anything is done for it (a code or
refresh token spent where the app cannot read the answer would be lost to it)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import after_this_request, jsonify, make_response, request

from .. import redirect_uris
from ..oauth import clients

ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
# What a browser app must read: the DPoP nonce, and a resource's challenge.
EXPOSE_HEADERS = "DPoP-Nonce, WWW-Authenticate"
PREFLIGHT_MAX_AGE = 600


def _origin() -> str | None:
    value = request.headers.get("Origin")
    return redirect_uris.origin(value) if value else None


def _allow(response, origin: str):
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    response.vary.add("Origin")
    return response


def _preflight(methods: str):
    origin = _origin()
    if request.headers.get("Access-Control-Request-Method") is None:
        response = make_response("", 204)  # a plain OPTIONS: what the endpoint takes
        response.headers["Allow"] = f"{methods}, OPTIONS"
        return response
    if origin is None or not clients.origin_registered(origin):
        return make_response("", 403)
    response = make_response("", 204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = methods
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    response.vary.add("Origin")
    return response


def _verdict(client_id: str | None) -> tuple[bool, str | None]:
    """For a request with an Origin header that names ``client_id``: whether it is refused
    (the client is known and the origin is not one of its own), and the origin to answer
    (its client's, or for a request that names no known client any registered origin)."""
    origin = _origin()
    client = clients.query_client(client_id)
    if client is not None and (origin is None or not clients.origin_allowed(client.id, origin)):
        return True, None
    if origin is not None and (client is not None or clients.origin_registered(origin)):
        return False, origin
    return False, None


def before_the_view(view, client_id: str | None) -> None:
    """An answer given before ``view`` runs (a request guard's 400, 401 or 413) carries the
    CORS headers the view would have given, so the app reads it too; a refused origin gets
    the guard's answer without them."""
    if not getattr(view, "cors", False) or "Origin" not in request.headers or request.method == "OPTIONS":
        return
    _, origin = _verdict(client_id)
    if origin is not None:
        after_this_request(lambda response: _allow(response, origin))


def for_clients(client_of: Callable[[object], str | None], methods: str):
    """The view answers CORS for the origins of the client ``client_of(request)`` names
    (for a request that names no known client: for any registered origin, so the app
    reads why it was refused), and its preflights (it must take OPTIONS)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if request.method == "OPTIONS":
                return _preflight(methods)
            if "Origin" not in request.headers:
                return view(*args, **kwargs)
            refused, origin = _verdict(client_of(request))
            if refused:
                response = jsonify(error="invalid_request",
                                   error_description="This origin is not registered for the client.")
                response.status_code = 403
                return response
            if origin is not None:
                # Also on an error answered by an error handler (a 503, a 413).
                after_this_request(lambda response: _allow(response, origin))
            return view(*args, **kwargs)

        wrapped.cors = True
        return wrapped

    return decorator
