"""The live verdict on a new password while the person types it (static/password.js posts
the fields after every change), for each page that sets a password."""

from __future__ import annotations

from flask import jsonify, request

from .. import config
from ..services import password_policy

LIMIT = config.limit("RATELIMIT_PASSWORD_CHECK")


def verdict(email: str, name: str = ""):
    """Which rules of the policy the posted password and confirmation meet, as JSON."""
    checked = password_policy.check(request.form.get("password", ""), request.form.get("password_confirm", ""),
                                    email=email, name=name)
    return jsonify(rules=checked.rules, ok=checked.ok)
