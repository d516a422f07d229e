"""The lean protocol path: the token endpoint's client-credentials, refresh-token and
authorization-code grants and token introspection, answered below Flask's dispatch.

Most of what these requests cost was Flask's and Werkzeug's request machinery around them
(the request context, URL matching, the session, the before- and after-request hooks), not
their work. ``LeanProtocol`` is a WSGI layer inside the app (below the request observer, so
request ids, metrics and the request log see every request; below the body limit, so a
chunked body arrives read and counted) that takes ``POST /token`` with ``grant_type``
``client_credentials``, ``refresh_token`` or ``authorization_code`` (a relying app's server
exchanging the code it was sent back with) and ``POST /introspect`` when the request is
plainly one: a form body (``application/x-www-form-urlencoded``, UTF-8, with a
Content-Length within the limit), each parameter once, no query string, a well-formed or
no Authorization header, no client assertion, and no Origin, DPoP, Cookie,
Transfer-Encoding or Content-Encoding header. Everything else (other grants, CORS, DPoP,
malformed or unusual requests) goes the Flask route unchanged, with the body it sent.

What it does is what the route does, with the same objects: Authlib's authorization server
answers from an Authlib ``OAuth2Request`` made from the environ (its grants, hooks, client
authentication and throttling, and endpoint), in an application context only (the
database session, the configuration); the answer gets the route's headers (no-store,
``headers.security_headers``), the request log's client and endpoint and the token metric
(``telemetry.requests.note_protocol_request``), and the unit of work ends by its status (commit
below 400). An exception is answered as Flask answers it: a request context is made for
the request then, and the application's error handlers and after-request hooks run (a
database or Redis away: 503 ``temporarily_unavailable``; a value the database cannot hold:
400). IDP_LEAN_PROTOCOL=false sends every request the Flask route.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from urllib.parse import unquote

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Response
from werkzeug.datastructures import EnvironHeaders, ImmutableMultiDict
from werkzeug.wsgi import get_host

from .. import unit_of_work
from ..extensions import limiter
from ..kept import Kept
from ..oauth import authorization
from ..oauth.server import answer_maker
from ..telemetry.requests import note_protocol_request
from . import guards, headers, unlimited

FORM = "application/x-www-form-urlencoded"
FORM_TYPES = frozenset({FORM, f"{FORM};charset=utf-8", f"{FORM}; charset=utf-8"})
ENDPOINTS = {"/token": "oauth.token", "/introspect": "oauth.introspect"}
TOKEN_GRANTS = frozenset({"client_credentials", "refresh_token", "authorization_code"})
# Headers that send a request the Flask route: CORS, DPoP proofs and their nonces, a
# browser's cookies, a body to be decoded or not yet counted.
ROUTED_HEADERS = frozenset({"HTTP_ORIGIN", "HTTP_DPOP", "HTTP_COOKIE", "HTTP_TRANSFER_ENCODING", "HTTP_CONTENT_ENCODING"})
_NO_ARGS: ImmutableMultiDict = ImmutableMultiDict()


class _Payload(OAuth2Payload):
    def __init__(self, form: ImmutableMultiDict):
        self._form = form

    @property
    def data(self):
        return self._form

    @property
    def datalist(self):
        values = defaultdict(list)
        for key in self._form:
            values[key].extend(self._form.getlist(key))
        return values


class _Form(ImmutableMultiDict):
    """The request's form: Werkzeug's, whose ``get`` finds a missing parameter by raising and
    catching an HTTP exception; here a look-up (Authlib asks for absent parameters a dozen
    times a request)."""

    def get(self, key, default=None, type=None):  # noqa: A002 - Werkzeug's signature
        if type is not None:
            return super().get(key, default, type)
        values = dict.get(self, key)
        return values[0] if values else default


_UNPREFIXED = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


class _Headers(EnvironHeaders):
    """The request's headers, as the route's request has them. A WSGI environ holds each header
    once, so a header's list of values is its value, found without a pass over the whole
    environ; a header is found by a look-up, not by raising and catching a KeyError when it
    is absent; and this path's requests always have headers (a Content-Type, at least)."""

    def get(self, key, default=None, type=None):  # noqa: A002 - Werkzeug's signature
        if type is not None or not isinstance(key, str):
            return super().get(key, default, type)
        key = key.upper().replace("-", "_")
        value = self.environ.get(key if key in _UNPREFIXED else f"HTTP_{key}")
        return default if value is None else value

    def getlist(self, key, type=None):  # noqa: A002 - Werkzeug's signature
        if type is not None:
            return super().getlist(key, type)
        value = self.get(key)
        return [] if value is None else [value]

    def __bool__(self):
        return True


_URIS = Kept()  # the Host header is the client's to choose: bounded


def _uri(environ) -> str:
    """The request's URL as the route's request names it, its transport checked as Authlib's
    ``InsecureTransportError.check`` checks it; both remembered for a few URLs (the endpoints'
    under the hosts the server is called by), as the check parses the URL and the host's address
    each time. This path's URLs are plain ASCII, which Werkzeug's IRI form leaves as they are."""
    key = (environ["wsgi.url_scheme"], environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
           environ.get("SERVER_PORT"), environ.get("SCRIPT_NAME", ""), environ["PATH_INFO"],
           bool(os.environ.get("AUTHLIB_INSECURE_TRANSPORT")))
    uri = _URIS.get(key)
    if uri is None:
        uri = f"{key[0]}://{get_host(environ)}{key[4]}{key[5]}"
        if not is_secure_transport(uri):
            uri = ""
        _URIS.keep(key, uri)
    if not uri:
        raise InsecureTransportError()
    return uri


class _AnswerHeaders:
    """An answer's headers, a list of (name, value) as Werkzeug's ``Headers`` keeps them, with what
    the route's hooks use of them (``add``, ``extend``, setting one, ``get``, iteration), values checked as
    Werkzeug checks them (a string, no line break). The names in lower case are kept beside them."""

    __slots__ = ("_list", "_keys")

    def __init__(self, headers):
        self._list = [(name, _value(value)) for name, value in headers]
        self._keys = [name.lower() for name, _ in self._list]

    def __iter__(self):
        return iter(self._list)

    def __contains__(self, name):
        return name.lower() in self._keys

    def get(self, name, default=None):
        name, keys = name.lower(), self._keys
        return self._list[keys.index(name)][1] if name in keys else default

    def add(self, name, value):
        self._list.append((name, _value(value)))
        self._keys.append(name.lower())

    def extend(self, pairs):
        """Werkzeug's ``Headers.extend`` of (name, value) pairs: each added, in order; pairs made
        once (``headers.KnownHeaders``) were checked then."""
        if type(pairs) is not headers.KnownHeaders:
            for name, value in pairs:
                self.add(name, value)
            return
        self._list += pairs
        self._keys += pairs.lower_names

    def __setitem__(self, name, value):
        """Werkzeug's ``Headers.set``: the first header of that name replaced, the others removed,
        or the header added at the end."""
        value, lower, keys = _value(value), name.lower(), self._keys
        if lower not in keys:
            self._list.append((name, value))
            keys.append(lower)
            return
        index = keys.index(lower)
        self._list[index] = (name, value)
        if lower in keys[index + 1:]:
            kept = [i for i, key in enumerate(keys) if i <= index or key != lower]
            self._list = [self._list[i] for i in kept]
            self._keys = [keys[i] for i in kept]

    def to_wsgi_list(self):
        return list(self._list)


def _value(value) -> str:
    value = value if type(value) is str else str(value)
    if "\n" in value or "\r" in value:
        raise ValueError("Header values must not contain newline characters.")
    return value


_STATUS_LINES: dict[int, str] = {}


class Answer:
    """The server's answer on this path: what Flask's response for the same JSON would send (its
    status line, headers and body, Content-Length added as Werkzeug adds it), without building
    the Werkzeug response and its headers, which cost more than the rest of the answer."""

    __slots__ = ("status_code", "status", "headers", "body")

    def __init__(self, payload: str | bytes, status: int, headers):
        self.status_code = status
        line = _STATUS_LINES.get(status)
        if line is None:
            line = _STATUS_LINES[status] = Response(status=status).status  # Werkzeug's reason phrase
        self.status = line
        self.body = payload if type(payload) is bytes else payload.encode()
        self.headers = _AnswerHeaders(headers)
        self.headers.add("Content-Length", str(len(self.body)))

    @property
    def mimetype(self) -> str | None:
        content_type = self.headers.get("content-type")
        return content_type.partition(";")[0].strip() if content_type else None


_TEXT = (str, bytes)  # a JSON answer: server._json's str, or its flat answers' bytes


def _answer(payload, status: int, headers):
    """An ``Answer`` for a JSON answer (the server's every answer on this path); anything else
    (no Content-Type, a body that is not text) is Flask's response, as on the route."""
    if type(payload) in _TEXT and type(status) is int and any(name.lower() == "content-type" for name, _ in headers):
        return Answer(payload, status, headers)
    return Response(payload, status=status, headers=headers)


class LeanRequest(OAuth2Request):
    """Authlib's request, made from the environ and its parsed form: what the route's
    (``IdpAuthorizationServer.create_oauth2_request``) has, the client's address included."""

    def __init__(self, environ, form: ImmutableMultiDict):
        # What OAuth2Request.__init__ sets, its transport check remembered (``_uri``).
        self.uri = _uri(environ)
        self.method = "POST"
        self.headers = _Headers(environ)
        self._body = None
        self.client = self.auth_method = self.user = self.authorization_code = None
        self.refresh_token = self.credential = self._scope = None
        self._form = form
        self.payload = _Payload(form)
        self.client_ip = environ["REMOTE_ADDR"]
        self.dpop_jkt = None
        self.pushed = False

    @property
    def args(self):
        return _NO_ARGS

    @property
    def form(self):
        return self._form


def form_pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")``, as Werkzeug parses
    a form, pair for pair; a name or value is unquoted only when it holds a ``+`` or ``%`` (the
    others come out as they went in, and most of this path's do)."""
    pairs = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        pairs.append((_unquoted(name), _unquoted(value)))
    return pairs


def _unquoted(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors="werkzeug.url_quote") if "%" in text else text


def parse(environ, endpoint: str, limit: int | None) -> tuple[ImmutableMultiDict | None, bytes | None]:
    """The request's form when the lean path can answer it exactly, else None; and the body
    read (None when none was), which the Flask route must then be given again."""
    if (environ.get("QUERY_STRING") or environ.get(guards.TOO_LARGE) or not environ.get("REMOTE_ADDR")
            or not environ.keys().isdisjoint(ROUTED_HEADERS)
            or environ.get("CONTENT_TYPE", "").lower() not in FORM_TYPES):
        return None, None
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()):
        return None, None
    length = int(length)
    if not 0 < length <= (limit or length):
        return None, None
    body = environ["wsgi.input"].read(length)
    if len(body) != length:
        return None, body
    try:
        pairs = form_pairs(body.decode())
    except UnicodeDecodeError:
        return None, body
    form = _Form(pairs)
    if len(form) != len(pairs) or "client_assertion" in form or "client_assertion_type" in form:
        return None, body  # a parameter sent twice is the guard's answer; assertions go the route
    if endpoint == "oauth.token" and form.get("grant_type") not in TOKEN_GRANTS:
        return None, body
    header = environ.get("HTTP_AUTHORIZATION")
    if header is not None and not guards.wellformed_authorization(header):
        return None, body
    return form, body


class LeanProtocol:
    """WSGI middleware: the lean path for the requests it can answer exactly (see the module
    docstring), ``wsgi_app`` (Flask) for every other. Wrap it once the limiter and the
    protocol blueprint are set up: an endpoint that Flask-Limiter would count stays on the route."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        unlimited_endpoints = unlimited.without_limits(app, limiter, ENDPOINTS.values())
        self.endpoints = {path: name for path, name in ENDPOINTS.items() if name in unlimited_endpoints}

    def __call__(self, environ, start_response):
        endpoint = self.endpoints.get(environ.get("PATH_INFO"))
        if endpoint is None or environ.get("REQUEST_METHOD") != "POST" or not self.app.config["LEAN_PROTOCOL"]:
            return self.wsgi_app(environ, start_response)
        form, body = parse(environ, endpoint, self.app.config["MAX_CONTENT_LENGTH"])
        if form is None:
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        context = self.app.app_context()
        context.push()
        error = None
        try:
            response = self._respond(environ, endpoint, form, body)
            if isinstance(response, Answer):
                start_response(response.status, response.headers.to_wsgi_list())
                return [response.body]
            if not response.is_sequence or "Content-Length" not in response.headers:  # none of this path's answers
                return response(environ, start_response)
            # What Werkzeug's response sends for a JSON answer made at once: its headers and body.
            start_response(response.status, response.headers.to_wsgi_list())
            return [response.get_data()]
        except BaseException as exc:
            error = exc
            raise
        finally:
            context.pop(error)

    def _respond(self, environ, endpoint: str, form: ImmutableMultiDict, body: bytes):
        in_view = True
        try:
            request = LeanRequest(environ, form)
            maker = answer_maker.set(_answer)
            try:
                if endpoint == "oauth.token":
                    response = authorization.create_token_response(request)
                else:
                    response = authorization.create_endpoint_response("introspection", request)
            finally:
                answer_maker.reset(maker)
            headers.no_store(response)
            in_view = False
            # The route's after-request hooks, in their order.
            note_protocol_request(environ, endpoint, form, response.status_code)
            headers.security_headers(response)
            unit_of_work.finish(response)
            return response
        except Exception as exc:  # noqa: BLE001 - answered by the application's error handlers
            return self._as_flask_answers(environ, body, exc, in_view)

    def _as_flask_answers(self, environ, body: bytes, exc: Exception, in_view: bool):
        """The answer Flask gives when the view (``in_view``) or an after-request hook raises
        ``exc``: its error handlers and hooks, in a request context made now."""
        app = self.app
        environ["wsgi.input"] = io.BytesIO(body)
        context = app.request_context(environ)
        context.push()
        error = None
        try:
            context.request.form  # noqa: B018 - parsed, as the route's guard parsed it, for the hooks that read it
            if not in_view:
                error = exc
                return app.handle_exception(exc)
            try:
                return app.finalize_request(app.handle_user_exception(exc))
            except Exception as raised:  # noqa: BLE001 - no handler took it: Flask's 500
                error = raised
                return app.handle_exception(raised)
        finally:
            context.pop(error)
