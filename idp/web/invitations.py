"""F1 invitations in the firm's client management, and F2 the invitee's acceptance pages."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from .. import clock
from ..errors import DomainError, InvitationUnusable
from .. import config
from ..extensions import limiter
from ..flows import InvitationFlow
from ..services import administrations, invitations, password_policy
from . import browser, caller, errors, live_password
from .i18n import current_locale
from .login import start_for

bp = Blueprint("invitations", __name__)


# -- F2: the invitee -------------------------------------------------------------------


@bp.route("/invitation/<token>")
def open_link(token):
    flow = InvitationFlow.start(invitations.by_token(token))
    browser.own_flow(flow.id)
    return redirect(url_for("invitations.step", flow_id=flow.id))


def _load(flow_id):
    flow = InvitationFlow.load(flow_id, browser.owned_flows())
    flow.check_live()
    return flow


def _page(flow: InvitationFlow, status: int = 200, signed_in: str | None = None, **shown):
    """The page of the flow's state; ``shown``: a refusal as web.errors.shown gives it;
    ``signed_in``: the account a browser back from signing in is signed in as."""
    invitation = flow.invitation if flow.state != "done" else None
    context = {"flow": flow, "state": flow.state, "invitation": invitation, "email": flow.email,
               "plans": invitations.PLANS, "rules": password_policy.RULES, "signed_in": signed_in, **shown}
    return render_template(f"invitation/{flow.state}.html", **context), status


@bp.route("/invitation/flow/<flow_id>", methods=["GET"])
def step(flow_id):
    """Read-only: the page of the flow's state. An existing account, back from signing in,
    sees whom it signed in as; its flow moves on only when that page is posted."""
    flow = _load(flow_id)
    sso = browser.current_sso()
    if flow.state == "signin" and sso is not None:
        flow.check_signed_in(sso.account)
        return _page(flow, signed_in=sso.account.email)
    return _page(flow)


@bp.route("/invitation/flow/<flow_id>/signin", methods=["POST"])
def signin(flow_id):
    """Sign in with the existing account; signed in already, on to the contract."""
    flow = _load(flow_id)
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("invitations.step", flow_id=flow.id), login_hint=flow.email)
    flow.signed_in_as(sso.account)
    return redirect(url_for("invitations.step", flow_id=flow.id))


@bp.route("/invitation/flow/<flow_id>", methods=["POST"])
@limiter.limit(lambda: caller.login_limit(), methods=["POST"])
def submit(flow_id):
    flow = InvitationFlow.load(flow_id, browser.owned_flows())
    action = request.form.get("action") or None
    try:
        flow.advance(request.form.get("state", ""), request.form, caller.context(), action=action)
    except InvitationUnusable:
        raise  # its own page, not the step's
    except DomainError as err:
        return _page(flow, status=err.status, **errors.shown(err))
    return redirect(url_for("invitations.step", flow_id=flow.id, resent=1 if action == "resend" else None))


@bp.route("/invitation/flow/<flow_id>/password-check", methods=["POST"])
@limiter.limit(live_password.LIMIT)
def password_check(flow_id):
    """The policy verdict for the password typed so far (the page shows it live)."""
    try:
        flow = InvitationFlow.load(flow_id, browser.owned_flows())
        name = flow.invitation.name
    except DomainError:
        abort(404)
    return live_password.verdict(flow.email, name)


# -- F1: the firm's client management > invitations -------------------------------------


def _firm_or_404(firm_id: str):
    sso = browser.current_sso()
    if sso is None:
        return None, start_for(request.path)
    firm = administrations.firm_managed_by(sso.account, firm_id)
    if firm is None:
        abort(404)
    return (firm, sso.account), None


def _inviter(account) -> str:
    return account.name or account.email


def _list_page(firm, account, *, error=None, status=200, form=None, preview_text=None, offer=None):
    """``offer``: the open invitation a refused second one names, to send again."""
    items = [(inv, inv.status(clock.now())) for inv in invitations.for_firm(firm)]
    return render_template("firm/invitations.html", firm=firm, items=items, error=error, form=form or {},
                           preview=preview_text, plans=invitations.PLANS, offer=offer,
                           done=request.args.get("done")), status


@bp.route("/firms/<firm_id>/invitations", methods=["GET"])
def firm_invitations(firm_id):
    found, redirect_to = _firm_or_404(firm_id)
    if redirect_to is not None:
        return redirect_to
    return _list_page(*found)


@bp.route("/firms/<firm_id>/invitations", methods=["POST"])
@limiter.limit(config.limit("RATELIMIT_FIRM_INVITE"), methods=["POST"])
def firm_invite(firm_id):
    found, redirect_to = _firm_or_404(firm_id)
    if redirect_to is not None:
        return redirect_to
    firm, account = found
    form = {k: request.form.get(k, "").strip() for k in ("email", "name", "administration", "plan")}
    try:
        if request.form.get("action") == "preview":
            text = invitations.preview(form["email"], form["name"], form["administration"], firm, _inviter(account),
                                       current_locale())
            return _list_page(firm, account, form=form, preview_text=text)
        invitations.create(form["email"], form["name"], form["administration"], firm=firm, plan=form["plan"] or "basic",
                           actor=account.id, inviter=_inviter(account), locale=current_locale(), ip=caller.client_ip())
    except DomainError as err:
        return _list_page(firm, account, error=err.message(), status=err.status, form=form,
                          offer=getattr(err, "invitation", None))
    return redirect(url_for("invitations.firm_invitations", firm_id=firm.id, done="sent"))


@bp.route("/firms/<firm_id>/invitations/<invitation_id>/<action>", methods=["POST"])
@limiter.limit(config.limit("RATELIMIT_FIRM_INVITE"), methods=["POST"])
def firm_invitation_action(firm_id, invitation_id, action):
    """Resend at once; revoke after a question (a page naming the invitation) is confirmed."""
    found, redirect_to = _firm_or_404(firm_id)
    if redirect_to is not None:
        return redirect_to
    firm, account = found
    invitation = invitations.of_firm(firm, invitation_id)
    if invitation is None or action not in ("resend", "revoke"):
        abort(404)
    try:
        if action == "resend":
            invitations.resend(invitation, actor=account.id, inviter=_inviter(account), ip=caller.client_ip())
        elif request.form.get("confirm") != "yes":
            invitations.ensure_open(invitation)
            return render_template("withdraw_invitation.html", invitation=invitation, action=request.path,
                                   back=_back(firm), fields={"back": "portal" if _from_portal() else ""})
        else:
            invitations.revoke(invitation, actor=account.id, ip=caller.client_ip())
    except DomainError as err:
        return _list_page(firm, account, error=err.message(), status=err.status)
    return redirect(_back(firm, done="resent" if action == "resend" else "revoked"))


def _from_portal() -> bool:
    return request.form.get("back") == "portal"


def _back(firm, done=None) -> str:
    """Where an action on an invitation returns: the firm portal it was taken on, else client management."""
    if _from_portal():
        return url_for("firm.portal", firm=firm.id, done=done)
    return url_for("invitations.firm_invitations", firm_id=firm.id, done=done)
