"""The dev mailbox: the outbox as a page, only in development without an SMTP relay."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from ..services import mailer

bp = Blueprint("dev", __name__)


@bp.before_request
def only_in_development():
    if not current_app.config["DEV_MAILBOX"]:
        abort(404)


@bp.route("/dev/mailbox")
def mailbox():
    return render_template("dev_mailbox.html", mails=mailer.dev_mailbox())
