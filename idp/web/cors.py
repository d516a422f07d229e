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
            origin = _origin()
            client_id = client_of(request)
            client = clients.query_client(client_id)
            if client is not None and (origin is None or not clients.origin_allowed(client.id, origin)):
                response = jsonify(error="invalid_request",
                                   error_description="This origin is not registered for the client.")
                response.status_code = 403
                return response
            if origin is not None and (client is not None or clients.origin_registered(origin)):
                # Also on an error answered by an error handler (a 503, a 413).
                after_this_request(lambda response: _allow(response, origin))
            return view(*args, **kwargs)

        return wrapped

    return decorator
