"""The sign-in steps: one page per state of the stored login flow."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from .. import clock
from ..errors import DomainError, FlowExpired
from ..extensions import db, limiter
from ..flows import LoginFlow
from ..models import Client
from ..services import sessions, totp
from . import common

bp = Blueprint("login", __name__)


def _login_limit():
    return current_app.config["RATELIMIT_LOGIN_PER_IP"]


def start_for(return_to: str):
    """Send a browser without a session through the login steps, then to ``return_to``
    (a path on this site)."""
    if not return_to.startswith("/") or return_to.startswith("//"):
        return_to = "/account"
    flow = LoginFlow.create(data={"return_to": return_to})
    db.session.commit()
    common.own_flow(flow.id)
    return redirect(url_for("login.step", flow_id=flow.id))


def _page(flow: LoginFlow, error: str | None = None, status: int = 200):
    params = flow.data.get("authorize") or {}
    g.ui_locales = flow.data.get("ui_locales")
    client = db.session.get(Client, params["client_id"]) if params.get("client_id") else None
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
    if flow.state in ("verify_email", "email_code", "totp", "totp_enroll") and account is not None:
        context["account_email"] = account.email
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
@limiter.limit(_login_limit, methods=["POST"])
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
    if new_state == "resume":
        return _finish(flow, ctx)
    return redirect(url_for("login.step", flow_id=flow.id))


def _finish(flow: LoginFlow, ctx):
    """Authentication is complete: a new SSO session and a new cookie, then back to
    the authorization request (or the page that asked for sign-in)."""
    account = flow.account
    sso = sessions.start(account, flow.data.get("amr", ["pwd"]), ip=ctx.ip, user_agent=ctx.user_agent)
    params = flow.data.get("authorize")
    if not params:
        flow.move_to("done")
    db.session.commit()
    common.renew_session(sso.id)
    if params:
        return redirect(url_for("oauth.authorize") + "?" + urlencode({**params, "_flow": flow.id}))
    return redirect(flow.data.get("return_to") or url_for("account.home"))
