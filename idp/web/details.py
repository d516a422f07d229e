"""Changing one's own details from the account page: the name, and the e-mail address
(the current password, then the code mailed to the new address)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from ..errors import DomainError
from ..extensions import limiter
from ..flows import EmailChangeFlow
from ..services import accounts
from . import browser, caller
from .login import start_for

bp = Blueprint("details", __name__)


@bp.route("/account/name", methods=["GET", "POST"])
def name():
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("details.name"))
    if request.method == "GET":
        return render_template("account/name.html", account=sso.account, value=sso.account.name)
    value = request.form.get("name", "")
    try:
        accounts.change_name(sso.account, value, ip=caller.client_ip())
    except DomainError as err:
        return render_template("account/name.html", account=sso.account, value=value,
                               error=err.message()), err.status
    return redirect(url_for("account.home", done="name"))


@bp.route("/account/email", methods=["GET", "POST"])
@limiter.limit(caller.login_limit, methods=["POST"])
def email():
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("details.email"))
    if request.method == "GET":
        return render_template("account/email.html", account=sso.account, value="")
    try:
        flow = EmailChangeFlow.start(sso.account, request.form, caller.context())
    except DomainError as err:
        return render_template("account/email.html", account=sso.account, value=request.form.get("email", ""),
                               error=err.message()), err.status
    browser.own_flow(flow.id)
    return redirect(url_for("details.email_code", flow_id=flow.id))


def _code_page(flow: EmailChangeFlow, error: str | None = None, status: int = 200):
    return render_template("account/email_code.html", flow=flow, state=flow.state, error=error), status


@bp.route("/account/email/<flow_id>", methods=["GET", "POST"])
@limiter.limit(caller.login_limit, methods=["POST"])
def email_code(flow_id):
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("details.email"))
    flow = EmailChangeFlow.load_for(flow_id, browser.owned_flows(), sso.account)
    flow.check_live()
    if flow.state == "done":
        return redirect(url_for("account.home"))
    if request.method == "GET":
        return _code_page(flow)
    try:
        state = flow.advance(request.form.get("state", ""), request.form, caller.context(),
                             action=request.form.get("action") or None)
    except DomainError as err:
        return _code_page(flow, error=err.message(), status=err.status)
    if state == "done":
        return redirect(url_for("account.home", done="email"))
    return redirect(url_for("details.email_code", flow_id=flow.id))
