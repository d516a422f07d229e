"""F9 the support console at /support: staff only, with a fresh sign-in and a reason for every action."""

from __future__ import annotations

import functools

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext

from .. import clock, config
from ..errors import DomainError, InvalidInput
from ..extensions import limiter
from ..services import event_names, invitations, sessions, support
from . import browser, caller
from .login import start_for

bp = Blueprint("support", __name__, url_prefix="/support")

# The console's connector routes and the actions of support.ACTIONS they perform.
CONNECTOR_ACTIONS = {"release": "release-reset-throttle", "unlock": "unlock-connector"}


def staff_only(view):
    """The view gets the staff account as its first argument: anyone else signs in first (or
    gets a 404 when signed in without the staff role), and staff signed in more than
    SUPPORT_FRESH_LOGIN ago sign in again."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        sso = browser.current_sso()
        here = request.path if request.method == "GET" else url_for("support.search")
        if sso is None:
            return start_for(here)
        if sso.account.role != "support":
            abort(404)
        if not sessions.signed_in_within(sso, current_app.config["SUPPORT_FRESH_LOGIN"]):
            return start_for(here, login_hint=sso.account.email)
        return view(sso.account, *args, **kwargs)

    return wrapper


def _actor(staff) -> str:
    return f"staff:{staff.email}"


@bp.route("", methods=["GET"])
@limiter.limit(config.limit("RATELIMIT_SUPPORT_SEARCH"))
@staff_only
def search(staff):
    q = request.args.get("q", "")
    page = _page_number()
    results, more = support.search(q, page)
    return render_template("support/search.html", q=q, results=results, page=page, more=more,
                           now=clock.now(), staff=staff)


MAX_PAGE = 10_000  # far beyond any list; keeps the offset a number every database takes


def _page_number() -> int:
    try:
        return min(max(int(request.args.get("page", "1")), 1), MAX_PAGE)
    except ValueError:
        return 1


@bp.route("/accounts/<account_id>", methods=["GET"])
@staff_only
def account(staff, account_id):
    return _account_page(staff, account_id)


def _account_page(staff, account_id, *, error=None, failed_group=None, status=200):
    """The account's page; a refused action shows its ``error`` in its own group."""
    target = support.get_account(account_id)
    if target is None:
        abort(404)
    kind, period, page = request.args.get("kind") or None, request.args.get("period") or "all", _page_number()
    events, more = support.events(target, kind=kind, period=period, page=page)
    return render_template(
        "support/account.html", account=target, staff=staff, error=error, failed_group=failed_group,
        events=events, more=more, page=page, kind=kind, period=period, kinds=event_names.KINDS,
        periods=support.PERIODS, names=event_names, **support.overview(target)), status


def _done(account_id, message):
    # At the page's top, where the confirmation is (not at the group the form's address named).
    return redirect(url_for("support.account", account_id=account_id, done=message, _anchor="main"))


@bp.route("/accounts/<account_id>/<action>", methods=["POST"])
@staff_only
def account_action(staff, account_id, action):
    return _perform(staff, _action(action, "account"), support.get_account(account_id), account_id, done=action)


@bp.route("/connectors/<int:connector_id>/<action>", methods=["POST"])
@staff_only
def connector_action(staff, connector_id, action):
    performed = _action(CONNECTOR_ACTIONS.get(action, ""), "connector")
    return _perform(staff, performed, support.get_connector(connector_id), request.form.get("account_id", ""),
                    done=f"connector-{action}")


def _action(name: str, subject: str) -> support.Action:
    action = support.ACTIONS.get(name)
    if action is None or action.subject != subject:
        abort(404)
    return action


def _perform(staff, action: support.Action, subject, account_id: str, *, done: str):
    """``action`` on ``subject`` (an account or a connector user; 404 when there is none)."""
    if subject is None:
        abort(404)
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
        return _account_page(staff, account_id, error=err.message(), failed_group=request.form.get("group"),
                             status=err.status)
    return _done(account_id, done)


@bp.route("/invitations/<invitation_id>/<action>", methods=["POST"])
@staff_only
def invitation_action(staff, invitation_id, action):
    invitation = invitations.get(invitation_id)
    if invitation is None or action not in ("resend", "revoke"):
        abort(404)

    def perform(actor, ip, reason):
        if action == "resend":
            inviter = invitation.firm.name if invitation.firm else gettext("Support")
            invitations.resend(invitation, actor=actor, inviter=inviter, ip=ip, reason=reason)
        else:
            invitations.revoke(invitation, actor=actor, ip=ip, reason=reason)

    return _act(staff, perform, request.form.get("account_id", ""), f"invitation-{action}", confirm=action == "revoke")
