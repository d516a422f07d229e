"""/healthz, /readyz and /metrics for load balancers and Prometheus: no session, no templates."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, abort, current_app, jsonify, request

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    from ..services import readiness

    checks = readiness.check()
    ready = readiness.ready(checks)
    response = jsonify(status="ok" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _from_loopback() -> bool:
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
    # A proxy on this machine whose forwarded headers we do not trust: the client is not us.
    if loopback and "X-Forwarded-For" in request.headers and not current_app.config["TRUSTED_PROXIES"]:
        return False
    return loopback


def _bearer_ok() -> bool:
    expected = current_app.config["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    scheme, _, offered = header.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.strip().encode(), str(expected).encode())


@bp.get("/metrics")
def metrics():
    from . import scrape

    if not (_from_loopback() or _bearer_ok()):
        # Without a token nothing is offered to other hosts; with one, a wrong or missing bearer is refused.
        abort(403 if current_app.config["METRICS_TOKEN"] else 404)
    response = current_app.response_class(scrape.render(), mimetype=None, content_type=scrape.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
