"""Request guards in front of the views: malformed requests get a clean 4xx, never a 500."""

from __future__ import annotations

import base64
import io

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import abort, current_app, jsonify, request

from .. import unit_of_work
from . import cors

CREDENTIAL_ENDPOINTS = {"oauth.token", "oauth.introspect", "oauth.revoke", "oauth.pushed_authorization"}
# Whose refusals are OAuth errors in JSON, never the error page.
PROTOCOL_ENDPOINTS = CREDENTIAL_ENDPOINTS | {"oauth.userinfo"}
TOO_LARGE = "idp.body_too_large"


class BodyLimit:
    """WSGI middleware: a body sent without Content-Length (chunked) is read up to the
    limit; a longer one is answered 413 instead of being silently cut off."""

    def __init__(self, wsgi_app, limit: int):
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ, start_response):
        if not environ.get("CONTENT_LENGTH") and environ.get("REQUEST_METHOD") in ("POST", "PUT", "PATCH"):
            chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            if chunked or environ.get("wsgi.input_terminated"):
                body = environ["wsgi.input"].read(self.limit + 1)
                if len(body) > self.limit:
                    # Answered 413 by the app (guards.before_request), with the headers it adds.
                    environ[TOO_LARGE] = True
                    body = b""
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
                environ.pop("HTTP_TRANSFER_ENCODING", None)
                environ["wsgi.input_terminated"] = False
        return self.wsgi_app(environ, start_response)


def wellformed_authorization(header: str) -> bool:
    parts = header.split(None, 1)
    if len(parts) != 2:
        return False
    if parts[0].lower() == "basic":
        try:
            base64.b64decode(parts[1].strip().encode("ascii"), validate=True).decode("utf-8")
        except (ValueError, UnicodeError):
            return False
    return True


def _csrf_protected(req) -> bool:
    from ..extensions import csrf

    view = current_app.view_functions.get(req.endpoint)
    return view is not None and f"{view.__module__}.{view.__name__}" not in csrf._exempt_views


def _claimed_client(req, read_form: bool) -> str | None:
    """The client a request says it comes from, as far as it can be read safely here: the
    Basic user of a well-formed header, else the form's ``client_id`` (when the body is read)."""
    header = req.headers.get("Authorization")
    if header is not None and wellformed_authorization(header):
        user, _ = extract_basic_authorization(req.headers)
        if user:
            return user
    return req.form.get("client_id") if read_form else None


def _answer(req, response=None, *, read_form: bool = True):
    """A guard's answer, with the CORS headers its endpoint gives a browser app."""
    cors.before_the_view(current_app.view_functions.get(req.endpoint), _claimed_client(req, read_form))
    return response


def _oauth_error(status: int, error: str, description: str):
    """A guard's answer at a protocol endpoint: an OAuth error its client can parse."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def before_request():
    """Runs before CSRF protection and the views."""
    req = request._get_current_object()  # one look-up of the context, not one per attribute
    endpoint = req.endpoint
    limit = req.max_content_length
    if req.environ.get(TOO_LARGE) or (limit is not None and (req.content_length or 0) > limit):
        if endpoint in PROTOCOL_ENDPOINTS:
            return _answer(req, _oauth_error(413, "invalid_request", "The request is too large."), read_form=False)
        _answer(req, read_form=False)
        abort(413)
    post = req.method == "POST"
    if post and req.mimetype == "multipart/form-data" and _csrf_protected(req):
        # A part without a name would reach the CSRF check as a None key.
        if None in req.form or None in req.files:
            abort(400)
    if endpoint not in CREDENTIAL_ENDPOINTS:
        return None
    # RFC 6749 section 3.2: parameters must not be sent more than once.
    if post and any(len(values) > 1 for values in req.form.listvalues()):
        return _answer(req, _oauth_error(400, "invalid_request", "A parameter was sent more than once."))
    header = req.headers.get("Authorization")
    if header is not None and not wellformed_authorization(header):
        response = _oauth_error(401, "invalid_client", "Malformed Authorization header.")
        response.headers["WWW-Authenticate"] = 'Basic realm="idp"'
        return _answer(req, response)
    return None


def unrepresentable_input(error):
    """Input the database cannot hold or compare (PostgreSQL refuses NUL characters):
    nothing of ours matches it, so the request is answered 400 instead of failing."""
    unit_of_work.rollback()
    if request.endpoint in CREDENTIAL_ENDPOINTS:
        response = jsonify(error="invalid_request", error_description="A parameter cannot be processed.")
        response.headers["Cache-Control"] = "no-store"
        return response, 400
    from flask import render_template
    from flask_babel import gettext

    return render_template("message.html", error=gettext("This request cannot be handled")), 400
