"""Every endpoint whose view carries no limit, nor its blueprint, skips Flask-Limiter's
per-request search for limits, when the instance sets no default, application or meta limits
either (which apply everywhere). The search (limits of the view, of its blueprint and their
exemptions, resolved anew on every request) cost the token endpoint more than its secret
check, and each page of a sign-in more than its CSRF token. Which endpoints skip is found once,
at start-up. Failed client authentications are counted where they are decided
(oauth/client_auth.py), in the same storage, and stay counted."""

from __future__ import annotations

import weakref

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name

EXTENSION = "idp.unlimited"
_FILTERED: weakref.WeakSet = weakref.WeakSet()


def without_limits(app: Flask, limiter: Limiter, endpoints) -> frozenset[str]:
    """Those of ``endpoints`` for which Flask-Limiter has nothing to count."""
    manager = limiter.limit_manager
    with app.app_context():  # a limit may be a function of the configuration
        if manager.default_limits or manager.application_limits or app.config.get("RATELIMIT_META"):
            return frozenset()
        return frozenset(
            endpoint for endpoint in endpoints
            if endpoint in app.view_functions
            and not manager.decorated_limits(get_qualified_name(app.view_functions[endpoint]))
            and not manager.blueprint_limits(app, endpoint.rpartition(".")[0])
        )


def _skipped() -> bool:
    return request.endpoint in current_app.extensions.get(EXTENSION, ())


def init_app(app: Flask, limiter: Limiter) -> None:
    """Call once the blueprints are registered. The filter is the limiter's (one for every app
    it serves); what it skips is each app's own."""
    app.extensions[EXTENSION] = without_limits(app, limiter, app.view_functions)
    if limiter not in _FILTERED:
        limiter.request_filter(_skipped)
        _FILTERED.add(limiter)
