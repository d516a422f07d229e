"""Flask-Limiter's before-request check runs only for the endpoints where it has something to
count, when the instance sets no default, application or meta limits (which apply everywhere).

Before a request the check counts the limits of the view's blueprint, unless the view carries
limits of its own, which its decorator counts (with the blueprint's, unless they override them).
So it has nothing to count for an endpoint whose view carries limits, nor for one whose blueprint
has none, yet it resolved all of them anew on every request (limits of the view, of its blueprint
and their exemptions): on the token endpoint that cost more than the secret check, on a sign-in
post as much as the decorator's own check. Which endpoints skip it is found once, at start-up; the
decorators count as before. Failed client authentications are counted where they are decided
(oauth/client_auth.py), in the same storage, and stay counted."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_qualified_name

EXTENSION = "idp.unlimited"


def _everywhere(app: Flask, limiter: Limiter) -> bool:
    """Whether limits apply to every endpoint (default, application or meta limits)."""
    manager = limiter.limit_manager
    return bool(manager.default_limits or manager.application_limits or app.config.get("RATELIMIT_META"))


def _endpoints_where(app: Flask, limiter: Limiter, endpoints, skip) -> frozenset[str]:
    """Those of ``endpoints`` that ``skip(has its own limits, its blueprint has limits)`` lets skip
    the check; none where limits apply everywhere."""
    manager = limiter.limit_manager
    with app.app_context():  # a limit may be a function of the configuration
        if _everywhere(app, limiter):
            return frozenset()
        return frozenset(
            endpoint for endpoint in endpoints
            if endpoint in app.view_functions
            and skip(bool(manager.decorated_limits(get_qualified_name(app.view_functions[endpoint]))),
                     bool(manager.blueprint_limits(app, endpoint.rpartition(".")[0])))
        )


def without_limits(app: Flask, limiter: Limiter, endpoints) -> frozenset[str]:
    """Those of ``endpoints`` for which Flask-Limiter has nothing to count."""
    return _endpoints_where(app, limiter, endpoints, lambda own, blueprint: not own and not blueprint)


def nothing_before(app: Flask, limiter: Limiter, endpoints) -> frozenset[str]:
    """Those of ``endpoints`` for which the before-request check has nothing to count: the
    view carries limits of its own (its decorator counts them and its blueprint's), or its
    blueprint has none."""
    return _endpoints_where(app, limiter, endpoints, lambda own, blueprint: own or not blueprint)


def init_app(app: Flask, limiter: Limiter) -> None:
    """Call once the blueprints are registered: the limiter's before-request check (one for
    every app it serves; none where the limits are off) is replaced in this app by one that
    skips this app's endpoints with nothing to count."""
    skipped = app.extensions[EXTENSION] = nothing_before(app, limiter, app.view_functions)
    check = limiter._check_request_limit

    def check_request_limit():
        if request.endpoint not in skipped:
            check()

    hooks = app.before_request_funcs.get(None, [])
    if check in hooks:
        hooks[hooks.index(check)] = check_request_limit
