"""The sign-in steps: one page per state of the stored login flow."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from ..errors import DomainError, FlowExpired
from .. import config
from ..extensions import db, limiter
from ..flows import LoginFlow
from ..models import Client
from ..services import password_policy, sessions, totp
from . import common

bp = Blueprint("login", __name__)


def start_for(return_to: str, login_hint: str | None = None):
    """Send a browser without a session through the login steps, then to ``return_to``
    (a path on this site)."""
    if not return_to.startswith("/") or return_to.startswith("//"):
        return_to = "/account"
    flow = LoginFlow.create(data={"return_to": return_to, "login_hint": login_hint})
    db.session.commit()
    common.own_flow(flow.id)
    return redirect(url_for("login.step", flow_id=flow.id))


def _page(flow: LoginFlow, error: str | None = None, status: int = 200):
    params = flow.data.get("authorize") or {}
    g.ui_locales = flow.data.get("ui_locales")
    client = db.session.get(Client, params["client_id"]) if params.get("client_id") else None
    if client is not None:
        common.allow_form_targets([params.get("redirect_uri")] if params.get("redirect_uri") else client.redirect_uris)
    context = {
        "flow": flow,
        "state": flow.state,
        "error": error,
        "client": client,
        "email": flow.email or flow.data.get("login_hint") or "",
    }
    account = flow.account
    if flow.state == "totp_enroll":
        secret = flow.pending_totp_secret()
        uri = totp.provisioning_uri(secret, account.email, current_app.config["PRODUCT_NAME"])
        context.update(totp_secret=totp.format_secret(secret), totp_qr=totp.qr_data_uri(uri))
    if flow.state == "consent":
        context.update(scopes=(flow.data.get("consent_scope") or "").split(), account=account)
    if account is not None:
        context["account_email"] = account.email
    if flow.state in ("forgot_email", "forgot_code"):
        context["reset_email"] = flow.data.get("reset_email") or flow.email or ""
    if flow.state == "new_password":
        context["rules"] = password_policy.RULES
    if flow.state in ("resume", "done"):
        return redirect(url_for("account.home"))
    return render_template(f"steps/{flow.state}.html", **context), status


@bp.route("/login/<flow_id>", methods=["GET"])
def step(flow_id):
    try:
        flow = LoginFlow.load(flow_id, common.owned_flows())
        flow.check_live()
    except DomainError as err:
        return common.render_error(err)
    return _page(flow)


@bp.route("/login/<flow_id>", methods=["POST"])
@limiter.limit(common.login_limit, methods=["POST"])
def submit(flow_id):
    try:
        flow = LoginFlow.load(flow_id, common.owned_flows())
    except DomainError as err:
        return common.render_error(err)
    g.ui_locales = flow.data.get("ui_locales")
    ctx = common.context()
    try:
        new_state = flow.advance(request.form.get("state", ""), request.form, ctx, action=request.form.get("action") or None)
    except FlowExpired as err:
        db.session.commit()
        return common.render_error(err)
    except DomainError as err:
        # Failed tries, lockouts and audit entries are kept even though the step failed.
        db.session.commit()
        return _page(flow, error=err.message(), status=err.status)
    db.session.commit()
    if new_state == "resume" and not flow.data.get("sid"):
        return _finish(flow, ctx)
    if new_state == "resume":
        # Consent given or refused: the session stays as it is; back to the authorization.
        return _back_to_authorization(flow)
    return redirect(url_for("login.step", flow_id=flow.id))


def _link_action(flow_id: str, state: str, action: str):
    """The links on a step page (forgot password, reset two-step verification)."""
    try:
        flow = LoginFlow.load(flow_id, common.owned_flows())
        flow.advance(state, {}, common.context(), action=action)
    except DomainError as err:
        db.session.rollback()
        return common.render_error(err)
    db.session.commit()
    return redirect(url_for("login.step", flow_id=flow.id))


@bp.route("/login/<flow_id>/forgot-password")
def forgot_password(flow_id):
    return _link_action(flow_id, "password", "forgot")


@bp.route("/login/<flow_id>/reset-2fa")
def reset_2fa(flow_id):
    return _link_action(flow_id, "totp", "reset_2fa")


@bp.route("/login/<flow_id>/password-check", methods=["POST"])
@limiter.limit(config.limit("RATELIMIT_PASSWORD_CHECK"))
def password_check(flow_id):
    from flask import abort, jsonify

    try:
        flow = LoginFlow.load(flow_id, common.owned_flows())
    except DomainError:
        abort(404)
    account = flow.account
    if flow.state != "new_password" or account is None:
        abort(404)
    verdict = password_policy.check(request.form.get("password", ""), request.form.get("password_confirm", ""),
                                    email=account.email, name=account.name)
    return jsonify(rules=verdict.rules, ok=verdict.ok)


def _finish(flow: LoginFlow, ctx):
    """Authentication is complete: a new SSO session and a new cookie, then back to
    the authorization request (or the page that asked for sign-in)."""
    account = flow.account
    previous = common.current_sso()
    if previous is not None:
        # A new sign-in in this browser (prompt=login, another account) ends the one before.
        sessions.end(previous, ip=ctx.ip)
    sso = sessions.start(account, flow.data.get("amr", ["pwd"]), ip=ctx.ip, user_agent=ctx.user_agent)
    flow.update_data(sid=sso.id)
    params = flow.data.get("authorize")
    if not params:
        flow.move_to("done")
    db.session.commit()
    common.renew_session(sso.id)
    if params:
        return _back_to_authorization(flow)
    return redirect(flow.data.get("return_to") or url_for("account.home"))


def _back_to_authorization(flow: LoginFlow):
    return redirect(url_for("oauth.authorize") + "?" + urlencode({**flow.data["authorize"], "_flow": flow.id}))
