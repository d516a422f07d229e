"""F7 the connector-user password portal, and the link the owner receives."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for

from ..errors import DomainError
from .. import config
from ..extensions import limiter
from ..flows import ConnectorResetFlow
from ..services import captcha, connectors, password_policy
from ..services.connectors import ConnectorResetRefused
from . import browser, caller, errors, headers, live_password

bp = Blueprint("connectors", __name__, url_prefix="/connector-password")

STEP_LIMIT = config.limit("RATELIMIT_CONNECTOR_STEP")


@bp.route("", methods=["GET"])
@limiter.limit(config.limit("RATELIMIT_CONNECTOR_START"))
def start():
    flow = ConnectorResetFlow.start()
    browser.own_flow(flow.id)
    return redirect(url_for("connectors.step", flow_id=flow.id))


@bp.route("/challenge", methods=["GET"])
@limiter.limit(config.limit("RATELIMIT_CONNECTOR_START"))
def challenge():
    return headers.no_store(jsonify(captcha.new_challenge()))


def _page(flow, error=None, status=200):
    return render_template(f"connector/{flow.state}.html", flow=flow, state=flow.state, error=error,
                           domain=current_app.config["CONNECTOR_DOMAIN"],
                           username=flow.data.get("username", "")), status


@bp.route("/flow/<flow_id>", methods=["GET"])
def step(flow_id):
    flow = ConnectorResetFlow.load(flow_id, browser.owned_flows())
    flow.check_live()
    return _page(flow)


@bp.route("/flow/<flow_id>", methods=["POST"])
@limiter.limit(STEP_LIMIT)
def submit(flow_id):
    flow = ConnectorResetFlow.load(flow_id, browser.owned_flows())
    try:
        flow.advance(request.form.get("state", ""), request.form, caller.context())
    except ConnectorResetRefused as err:
        return _page(flow, error=err.message(), status=err.status)
    return redirect(url_for("connectors.step", flow_id=flow.id))


# -- the owner's link ---------------------------------------------------------------


def _link_flow(token):
    flow = ConnectorResetFlow.by_link(token)
    if flow is None:
        return None, (render_template("connector/link_unusable.html"), 410)
    return flow, None


@bp.route("/<token>", methods=["GET"])
def link(token):
    flow, refused = _link_flow(token)
    if refused:
        return refused
    return _set_password_page(flow, token)


def _set_password_page(flow, token, status=200, **shown):
    connector = flow.connector
    return render_template("connector/set_password.html", flow=flow, token=token, connector=connector,
                           email=f"{connector.username}@{current_app.config['CONNECTOR_DOMAIN']}",
                           rules=password_policy.RULES, **shown), status


@bp.route("/<token>", methods=["POST"])
@limiter.limit(STEP_LIMIT)
def set_password(token):
    flow, refused = _link_flow(token)
    if refused:
        return refused
    try:
        flow.set_password(request.form, caller.context())
    except DomainError as err:
        return _set_password_page(flow, token, status=err.status, **errors.shown(err))
    return render_template("connector/done.html", username=flow.connector.username)


@bp.route("/<token>/password-check", methods=["POST"])
@limiter.limit(live_password.LIMIT)
def password_check(token):
    flow = ConnectorResetFlow.by_link(token)
    if flow is None:
        abort(404)
    return live_password.verdict(**connectors.policy_identity(flow.connector))
