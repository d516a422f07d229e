"""The documents people accept (general terms, privacy statement): the provider's own pages,
used where the operator has not configured its own (settings TERMS_URL, PRIVACY_URL)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for

bp = Blueprint("documents", __name__)


def urls() -> dict:
    """Where the terms and the privacy statement are: the configured documents, else ours."""
    config = current_app.config
    return {"terms_url": config["TERMS_URL"] or url_for("documents.terms"),
            "privacy_url": config["PRIVACY_URL"] or url_for("documents.privacy")}


@bp.route("/terms")
def terms():
    return render_template("documents/terms.html")


@bp.route("/privacy")
def privacy():
    return render_template("documents/privacy.html", **_retention())


def _retention() -> dict:
    config = current_app.config
    return {"session_hours": config["SESSION_LIFETIME"] // 3600,
            "code_minutes": config["EMAIL_CODE_LIFETIME"] // 60,
            "mail_days": config["OUTBOX_RETENTION"] // (24 * 3600),
            "device_days": config["DEVICE_COOKIE_LIFETIME"] // (24 * 3600)}
