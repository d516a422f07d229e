"""F8 trial sign-up at /signup: one page per state of the stored sign-up flow."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from .. import config
from ..errors import DomainError
from ..extensions import limiter
from ..flows import SignupFlow
from ..services import captcha, password_policy, signup
from . import browser, caller, errors, live_password

bp = Blueprint("signup", __name__, url_prefix="/signup")

START_LIMIT = config.limit("RATELIMIT_SIGNUP_START")


@bp.route("", methods=["GET"])
@limiter.limit(START_LIMIT)
def start():
    flow = SignupFlow.start()
    browser.own_flow(flow.id)
    return redirect(url_for("signup.step", flow_id=flow.id))


@bp.route("/challenge", methods=["GET"])
@limiter.limit(START_LIMIT)
def challenge():
    response = jsonify(captcha.new_challenge())
    response.headers["Cache-Control"] = "no-store"
    return response


def _load(flow_id) -> SignupFlow:
    flow = SignupFlow.load(flow_id, browser.owned_flows())
    flow.check_live()
    return flow


def _page(flow: SignupFlow, status=200, values=None, **shown):
    """The page of the flow's state; ``shown``: a refusal as web.errors.shown gives it."""
    return render_template(
        f"signup/{flow.state}.html", flow=flow, state=flow.state, data=flow.data, email=flow.email, **shown,
        prefill={**signup.entered(flow.data), **(values or {})}, rules=password_policy.RULES, firm=flow.firm, trial_ends=signup.trial_ends(),
        iban=signup.shown_iban(flow.data.get("iban")), administration=flow.administration,
        page=SignupFlow.PAGES.index(flow.state) + 1 if flow.state in SignupFlow.PAGES else None,
        pages=len(SignupFlow.PAGES),
    ), status


@bp.route("/flow/<flow_id>", methods=["GET"])
def step(flow_id):
    return _page(_load(flow_id))


def _not_first_step() -> bool:
    return request.form.get("state") != SignupFlow.initial


@bp.route("/flow/<flow_id>", methods=["POST"])
@limiter.limit(config.limit("RATELIMIT_SIGNUP_FIRST_STEP"), exempt_when=_not_first_step)
@limiter.limit(config.limit("RATELIMIT_SIGNUP_STEP"))
def submit(flow_id):
    flow = _load(flow_id)
    try:
        flow.advance(request.form.get("state", ""), request.form, caller.context(),
                     action=request.form.get("action") or None)
    except DomainError as err:
        values = {k: v for k, v in request.form.items() if k not in ("password", "password_confirm", "altcha")}
        return _page(flow, status=err.status, values=values, **errors.shown(err))
    return redirect(url_for("signup.step", flow_id=flow.id))


@bp.route("/flow/<flow_id>/password-check", methods=["POST"])
@limiter.limit(live_password.LIMIT)
def password_check(flow_id):
    flow = live_password.flow_at(SignupFlow, flow_id, "password")
    return live_password.verdict(flow.email, flow.data.get("name", ""))
