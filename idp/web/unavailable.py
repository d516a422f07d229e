"""What a person or a client sees while a dependency is away: a 503 that says to try again
in a moment, never a 500 with a traceback.

Redis (IDP_REDIS_URL) holds the rate limits. When it does not answer, the steps that count
tries (password, e-mail code, the CAPTCHA challenges of sign-in, sign-up and the connector
portal, the live password check, the support search) refuse with this 503: failing open would lift the
limits that guard passwords and codes while Redis is away, and the outage is short and
shown by /readyz. Discovery and JWKS count nothing; the token endpoint's throttle on failed
client authentication fails open (services/throttles.py ``fail_open``): client secrets are too
long to guess, and a refused /token would stop every application. The next request after Redis is back counts again: redis-py reconnects.

The database: a request that meets a connection the server has closed (a restart), a
connection whose prepared statements a migration made stale (``unit_of_work._stale_plan``) or
no server at all gets the same 503, or an OAuth ``temporarily_unavailable`` on the JSON
endpoints; the pool's checkout (``live_connections``) replaces dead connections for the
requests after it.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from .. import unit_of_work
from ..services import throttles

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# Endpoints whose callers are programs: they get OAuth's JSON error, not a page. The pages' own
# scripts are programs too: the CAPTCHA challenges, the live password checks (static/password.js)
# and the passkey options (static/passkeys.js), which also ask for JSON in their Accept header.
JSON_ENDPOINTS = {
    "oauth.discovery", "oauth.jwks", "oauth.token", "oauth.userinfo", "oauth.introspect", "oauth.revoke",
    "connectors.challenge", "login.challenge", "signup.challenge", "health.readyz", "health.metrics",
    "login.password_check", "signup.password_check", "invitations.password_check", "account.password_check",
    "connectors.password_check", "login.passkey_options", "security.passkey_options",
}


def _wants_json() -> bool:
    """A program's request: a JSON endpoint, or a caller that prefers JSON to a page."""
    if request.endpoint in JSON_ENDPOINTS:
        return True
    return request.accept_mimetypes.best_match(("text/html", "application/json")) == "application/json"


def _answer(description: str):
    if _wants_json():
        response = jsonify(error="temporarily_unavailable", error_description=description)
        response.status_code = 503
    else:
        try:
            body = render_template("message.html", title=gettext("Temporarily unavailable"), error=description)
        except Exception:  # the page itself may need what is away; the words are what matter
            log.warning("temporarily unavailable page could not be rendered", exc_info=True)
            body = f'<!doctype html><title>503</title><p role="alert">{description}</p>'
        response = Flask.response_class(body, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _limits_away(exc):
    log.warning("rate limits unavailable (Redis): %s: %s; refusing %s", exc.__class__.__name__, exc, request.endpoint)
    return _answer(gettext("This service is temporarily unavailable. Try again in a moment."))


def _database_away(exc):
    unit_of_work.abandon()
    log.warning("database unavailable: %s; refusing %s", exc.__class__.__name__, request.endpoint)
    return _answer(gettext("This service is temporarily unavailable. Try again in a moment."))


def _is_connection_problem(exc: DBAPIError) -> bool:
    return bool(getattr(exc, "connection_invalidated", False)) or isinstance(exc, (OperationalError, InterfaceError))


def _answer_for(exc):
    """The answer for ``exc`` when it is a dependency away (the database, the rate limits'
    storage), else None: a bug."""
    if isinstance(exc, DBAPIError) and _is_connection_problem(exc):
        return _database_away
    if isinstance(exc, throttles.storage_away()):
        return _limits_away
    return None


def is_away(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a dependency being away (answered here with a 503), not a bug."""
    return _answer_for(exc) is not None


def _database_error(exc: DBAPIError):
    if not _is_connection_problem(exc):
        raise exc  # a real bug stays a 500, with its traceback in the log
    return _database_away(exc)


def _server_error(err):
    """An error after the view (the unit of work's commit) reaches Flask as a 500 wrapping it."""
    from . import errors

    original = getattr(err, "original_exception", None)
    away = _answer_for(original)
    if away is not None:
        return away(original)
    return errors.http_error(err)


def init_app(app: Flask) -> None:
    from werkzeug.exceptions import InternalServerError

    app.register_error_handler(InternalServerError, _server_error)
    if app.config["REDIS_URL"]:  # without it redis-py is never loaded, and no Redis error can occur
        from redis.exceptions import RedisError

        app.register_error_handler(RedisError, _limits_away)
    app.register_error_handler(StorageError, _limits_away)
    # Any error of the database's driver: a lost connection is a 503 (a disconnect, or prepared
    # statements gone stale under a migration: unit_of_work._stale_plan), anything else a bug.
    app.register_error_handler(DBAPIError, _database_error)
