"""The live verdict on a new password while the person types it (static/password.js posts
the fields after every change), for each page that sets a password."""

from __future__ import annotations

from flask import abort, jsonify, request

from .. import config
from ..errors import DomainError
from ..services import password_policy
from . import browser

LIMIT = config.limit("RATELIMIT_PASSWORD_CHECK")


def flow_at(machine, flow_id: str, state: str):
    """The flow of this kind with this id that this browser drives, at its ``state`` (the step
    that sets the password); 404 for any other."""
    try:
        flow = machine.load(flow_id, browser.owned_flows())
    except DomainError:
        abort(404)
    if flow.state != state:
        abort(404)
    return flow


def verdict(email: str, name: str = ""):
    """Which rules of the policy the posted password and confirmation meet, as JSON."""
    checked = password_policy.check(request.form.get("password", ""), request.form.get("password_confirm", ""),
                                    email=email, name=name)
    return jsonify(rules=checked.rules, ok=checked.ok)
