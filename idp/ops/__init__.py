"""What operators of many instances need: forwarded headers, request ids, logs, metrics, health."""

from __future__ import annotations

from flask import Flask, request

from ..telemetry import logs, metrics
from ..telemetry.requests import CLIENT_ID_KEY, ENDPOINT_KEY, claimed_client_id
from .requests import RequestObserver

CLIENT_AUTH_ENDPOINTS = {"oauth.token", "oauth.introspect", "oauth.revoke"}


def init_app(app: Flask) -> None:
    """Call last in create_app: the middleware must wrap every other one."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from ..web import health

    logs.configure(app.config["LOG_FORMAT"])
    proxies = app.config["TRUSTED_PROXIES"]
    app.wsgi_app = RequestObserver(app.wsgi_app, trust_proxy=proxies > 0)
    if proxies:
        # Outermost, so everything below (limits, audit, logs) sees the client behind the proxies.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.register_blueprint(health.bp)
    app.after_request(_note_request)


def _parsed_form(req) -> dict:
    """The form if the view read it; the hook never parses a body itself (it may be too large or malformed)."""
    return req.__dict__.get("form") or {}


def _client_id(req, endpoint: str | None) -> str | None:
    if endpoint == "oauth.authorize":
        value = req.args.get("client_id")
        return value[:100] if value else None
    if endpoint in CLIENT_AUTH_ENDPOINTS:
        return claimed_client_id(_parsed_form(req), req.environ.get("HTTP_AUTHORIZATION"))
    return None


def _note_request(response):
    req = request._get_current_object()
    environ, endpoint = req.environ, req.endpoint
    environ[ENDPOINT_KEY] = endpoint
    environ[CLIENT_ID_KEY] = _client_id(req, endpoint)
    if endpoint == "oauth.token" and response.status_code == 200:
        metrics.token_issued(_parsed_form(req).get("grant_type"))
    return response
