"""Error pages: every DomainError a view lets through, CSRF failures and HTTP errors, mapped once.

A DomainError carries the text a person may see (``message()``) and, in ``detail``, what
only the log gets."""

from __future__ import annotations

import logging

from flask import render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..errors import DomainError, InvitationUnusable

log = logging.getLogger(__name__)

# The page a domain error gets, by blueprint; message.html elsewhere.
BLUEPRINT_PAGES = {"connectors": "connector/expired.html"}


def shown(err: DomainError) -> dict:
    """What a page shows of a refusal: its message, what exactly is wrong, and for a refused
    new password the state of each rule of the live list."""
    return {"error": err.message(), "problems": err.problems(), "password_states": getattr(err, "rules", None)}


def domain_error(err: DomainError):
    if err.detail:
        log.info("%s on %s: %s", type(err).__name__, request.endpoint, err.detail)
    if isinstance(err, InvitationUnusable):
        return render_template("invitation/unusable.html", error=err.message(), state=err.state), err.status
    return render_template(BLUEPRINT_PAGES.get(request.blueprint, "message.html"), **shown(err)), err.status


def csrf_error(err):
    return render_template("message.html", error=gettext("This form has expired. Please try again.")), 400


def http_error(err):
    from flask import current_app

    if err.code == 429:
        message = gettext("Too many requests. Wait a moment and try again.")
    elif err.code == 404:
        message = gettext("This page does not exist.")
    elif err.code == 413:
        message = gettext("The request is too large.")
    else:
        message = err.description
    response = current_app.make_response((render_template("message.html", error=message), err.code))
    if getattr(err, "valid_methods", None):
        response.headers["Allow"] = ", ".join(err.valid_methods)
    return response


def init_app(app) -> None:
    app.register_error_handler(DomainError, domain_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)
