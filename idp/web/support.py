"""F9 the support console at /support: staff only, with a fresh sign-in and a reason for every action."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from .. import clock, config
from ..errors import DomainError, InvalidInput
from ..extensions import limiter
from ..services import invitations, sessions, support
from . import browser, caller
from .login import start_for

bp = Blueprint("support", __name__, url_prefix="/support")

# The console's connector routes and the actions of support.ACTIONS they perform.
CONNECTOR_ACTIONS = {"release": "release-reset-throttle", "unlock": "unlock-connector"}


def _staff():
    """(staff account, None) or (None, response): sign in first, staff only, signed in
    within the last 15 minutes (otherwise sign in again)."""
    sso = browser.current_sso()
    here = request.path if request.method == "GET" else url_for("support.search")
    if sso is None:
        return None, start_for(here)
    if sso.account.role != "support":
        abort(404)
    if not sessions.signed_in_within(sso, current_app.config["SUPPORT_FRESH_LOGIN"]):
        return None, start_for(here, login_hint=sso.account.email)
    return sso.account, None


def _actor(staff) -> str:
    return f"staff:{staff.email}"


@bp.route("", methods=["GET"])
@limiter.limit(config.limit("RATELIMIT_SUPPORT_SEARCH"))
def search():
    staff, redirect_to = _staff()
    if redirect_to is not None:
        return redirect_to
    q = request.args.get("q", "")
    try:
        page = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        page = 1
    results, more = support.search(q, page)
    return render_template("support/search.html", q=q, results=results, page=page, more=more,
                           now=clock.now(), staff=staff)


@bp.route("/accounts/<account_id>", methods=["GET"])
def account(account_id):
    staff, redirect_to = _staff()
    if redirect_to is not None:
        return redirect_to
    return _account_page(account_id)


def _account_page(account_id, *, error=None, message=None, status=200):
    target = support.get_account(account_id)
    if target is None:
        abort(404)
    return render_template("support/account.html", account=target, error=error, message=message,
                           administration_name=support.administration_name, **support.overview(target)), status


def _done(account_id, message):
    return redirect(url_for("support.account", account_id=account_id, done=message))


@bp.route("/accounts/<account_id>/<action>", methods=["POST"])
def account_action(account_id, action):
    staff, redirect_to = _staff()
    if redirect_to is not None:
        return redirect_to
    target = support.get_account(account_id)
    if target is None:
        abort(404)
    return _perform(staff, _action(action, "account"), target, account_id, done=action)


@bp.route("/connectors/<int:connector_id>/<action>", methods=["POST"])
def connector_action(connector_id, action):
    staff, redirect_to = _staff()
    if redirect_to is not None:
        return redirect_to
    connector = support.get_connector(connector_id)
    if connector is None or action not in CONNECTOR_ACTIONS:
        abort(404)
    performed = _action(CONNECTOR_ACTIONS[action], "connector")
    return _perform(staff, performed, connector, request.form.get("account_id", ""), done=action)


def _action(name: str, subject: str) -> support.Action:
    action = support.ACTIONS.get(name)
    if action is None or action.subject != subject:
        abort(404)
    return action


def _perform(staff, action: support.Action, subject, account_id: str, *, done: str):
    return _act(staff, lambda **kw: action.perform(subject, **kw), account_id, done, confirm=action.destructive)


def _act(staff, perform, account_id: str, done: str, *, confirm: bool = False):
    """A staff action from an account page: a reason always (the console asks one for
    every action), a ticked box where ``confirm``, the service call (which writes the
    audit entry), then back to the account page."""
    try:
        reason = support.require_reason(request.form.get("reason"))
        if confirm and request.form.get("confirm") != "yes":
            raise InvalidInput(gettext("Tick the box to confirm this action."))
        perform(actor=_actor(staff), ip=caller.client_ip(), reason=reason)
    except DomainError as err:
        return _account_page(account_id, error=err.message(), status=err.status)
    return _done(account_id, done)


@bp.route("/invitations/<invitation_id>/<action>", methods=["POST"])
def invitation_action(invitation_id, action):
    staff, redirect_to = _staff()
    if redirect_to is not None:
        return redirect_to
    invitation = invitations.get(invitation_id)
    if invitation is None or action not in ("resend", "revoke"):
        abort(404)

    def perform(actor, ip, reason):
        if action == "resend":
            inviter = invitation.firm.name if invitation.firm else gettext("Support")
            invitations.resend(invitation, actor=actor, inviter=inviter, ip=ip, reason=reason)
        else:
            invitations.revoke(invitation, actor=actor, ip=ip, reason=reason)

    return _act(staff, perform, request.form.get("account_id", ""), action)
