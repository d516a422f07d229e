"""The sign-in steps: one page per state of the stored login flow."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, g, jsonify, make_response, redirect, request, url_for

from .. import config
from ..errors import DomainError
from ..extensions import limiter
from ..flows import LoginFlow
from ..services import captcha, sessions
from . import browser, caller, devices, errors, headers, live_password, login_pages as pages, oauth

bp = Blueprint("login", __name__)


def start_for(return_to: str, login_hint: str | None = None):
    """Send a browser without a session through the login steps, then to ``return_to``
    (a path on this site)."""
    if not return_to.startswith("/") or return_to.startswith("//"):
        return_to = "/account"
    flow = LoginFlow.create(data={"return_to": return_to, "login_hint": login_hint})
    browser.own_flow(flow.id)
    return redirect(url_for("login.step", flow_id=flow.id))


def _load(flow_id) -> LoginFlow:
    flow = LoginFlow.load(flow_id, browser.owned_flows())
    g.ui_locales = flow.data.get("ui_locales")
    return flow


@bp.route("/login/<flow_id>", methods=["GET"])
def step(flow_id):
    flow = _load(flow_id)
    flow.check_live()
    return pages.page(flow)


@bp.route("/login/<flow_id>", methods=["POST"])
@limiter.limit(caller.login_limit, methods=["POST"])
def submit(flow_id):
    flow = _load(flow_id)
    flow.check_live()
    ctx = caller.context()
    action = request.form.get("action") or None
    try:
        new_state = flow.advance(request.form.get("state", ""), request.form, ctx, action=action)
    except DomainError as err:
        return pages.page(flow, status=err.status, **errors.shown(err))
    if new_state == "resume" and not flow.data.get("sid"):
        return _finish(flow, ctx)
    if new_state == "resume":
        # Consent given or refused: the session stays as it is; back to the authorization.
        return _back_to_authorization(flow)
    if action == "resend":
        return redirect(url_for("login.step", flow_id=flow.id, resent=1))
    # The next step's page at the flow's address, one round trip less than a redirect to it.
    # Reloading it posts the step just done again, which the flow refuses as out of order:
    # 409, the current step's page with an alert, nothing changed.
    return pages.page(flow)


@bp.route("/login/<flow_id>/forgot-password")
def forgot_password(flow_id):
    """Read-only: the first F5 page; the flow moves when its form is posted."""
    flow = _load(flow_id)
    return pages.page(flow, state=flow.linked_page("forgot"))


@bp.route("/login/<flow_id>/reset-2fa")
def reset_2fa(flow_id):
    """Read-only: the first F6 page; the flow moves when its form is posted."""
    flow = _load(flow_id)
    return pages.page(flow, state=flow.linked_page("reset_2fa"))


@bp.route("/login/challenge", methods=["GET"])
@limiter.limit(config.limit("RATELIMIT_LOGIN_PER_IP"))
def challenge():
    """A proof-of-work challenge for the password step of a source with several failures."""
    return headers.no_store(jsonify(captcha.new_challenge()))


@bp.route("/login/<flow_id>/passkey-options", methods=["POST"])
@limiter.limit(caller.login_limit)
def passkey_options(flow_id):
    """The options for the browser's passkey prompt on this step (JSON); the flow keeps the challenge."""
    try:
        flow = _load(flow_id)
        flow.check_live()
        options = flow.passkey_options(name=request.form.get("name"))
    except DomainError as err:
        return headers.no_store(jsonify(error=err.message())), err.status
    return headers.no_store(jsonify(publicKey=options))


@bp.route("/login/<flow_id>/password-check", methods=["POST"])
@limiter.limit(live_password.LIMIT)
def password_check(flow_id):
    account = live_password.flow_at(LoginFlow, flow_id, "new_password").account
    if account is None:
        abort(404)
    return live_password.verdict(account.email, account.name)


def _finish(flow: LoginFlow, ctx):
    """Authentication is complete: a new SSO session and a new cookie, then back to
    the authorization request (or the page that asked for sign-in)."""
    previous = browser.current_sso()
    sso = sessions.sign_in(flow.account, flow.data.get("amr", ["pwd"]), previous=previous, ip=ctx.ip,
                           user_agent=ctx.user_agent)
    flow.signed_in(sso.id)
    browser.renew_session(sso.id)
    if flow.data.get("authorize"):
        # The authorization answered here, with the new session: one round trip less than
        # a redirect to /authorize naming the flow.
        response = make_response(oauth.resume(flow, sso))
    else:
        response = redirect(flow.data.get("return_to") or url_for("account.home"))
    return devices.remember(response, flow.account.id)


def _back_to_authorization(flow: LoginFlow):
    params = flow.data["authorize"]
    if flow.data.get("pushed"):
        # Pushed parameters (PAR) come back with the flow, not through the browser.
        params = {"client_id": params.get("client_id")}
    return redirect(url_for("oauth.authorize") + "?" + urlencode({**params, "_flow": flow.id}))
