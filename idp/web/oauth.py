"""The protocol endpoints: discovery, JWKS, authorize, pushed authorization requests, token,
userinfo, introspection, revocation and RP-initiated logout."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, validate_csrf

from .. import clock
from ..errors import DomainError
from ..extensions import csrf
from ..flows import LoginFlow
from ..oauth import authorization, checks, claims, client_auth, discovery as metadata, dpop, interaction, par, tokens
from ..services import audit, keys, sessions
from . import browser, caller, cors, headers, login_pages
from .i18n import current_locale

bp = Blueprint("oauth", __name__)


def _public(response, max_age: int):
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/.well-known/openid-configuration")
def discovery():
    return _public(jsonify(metadata.metadata(current_app.config["ISSUER"], current_app.config["LANGUAGES"])), 300)


@bp.route("/jwks.json")
def jwks():
    return _public(jsonify(keys.public_jwks()), 60)


# -- authorize -----------------------------------------------------------------


def _respond(response, response_mode: str):
    """An authorization response as Authlib made it, or as a form posted to the client."""
    if response_mode != "form_post" or not response.location:
        return response
    parts = urlsplit(response.location)
    target = parts._replace(query="").geturl()
    fields = parse_qsl(parts.query, keep_blank_values=True)
    response = current_app.make_response(render_template("form_post.html", action=target, fields=fields))
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}; frame-ancestors 'none'"
    )
    return response


def _error(err: OAuth2Error, response_mode: str = "query", state: str | None = None):
    """Errors go back to the client when its redirect URI is known, else to an error page."""
    if state and not err.state:
        err.state = state
    if not err.redirect_uri:
        return render_template("oauth_error.html", error=err.error, description=err.get_error_description()), 400
    return _respond(authorization.create_error_response(err), response_mode)


def _resumable_flow(flow_id: str | None, sso):
    """The login flow this authorization comes back from, if it is this person's and done."""
    if not flow_id or sso is None:
        return None
    try:
        flow = LoginFlow.load(flow_id, browser.owned_flows())
    except DomainError:
        return None
    if flow.state != "resume" or flow.expired() or flow.row.account_id != sso.account_id:
        return None
    return flow


def _resumed(flow) -> interaction.Resumed | None:
    if flow is None:
        return None
    return interaction.Resumed(just_signed_in=flow.data.get("authenticated_at") is not None,
                               consent=flow.data.get("consent"))


def _pushed(flow) -> par.Pushed | None:
    """The pushed parameters a resumed sign-in kept: they never travel in a URL."""
    if flow is None or not flow.data.get("pushed"):
        return None
    return par.Pushed(flow.data["authorize"])


def _to_login(req: checks.AuthorizationRequest):
    params = req.params
    flow = LoginFlow.start(params, login_hint=params.get("login_hint"), ui_locales=params.get("ui_locales"),
                           pushed=req.grant.request.pushed)
    browser.own_flow(flow.id)
    return login_pages.first_page(flow)


def _to_consent(req: checks.AuthorizationRequest, sso, flow):
    scope = claims.consent_scope(req.grant.request.scope, req.params, req.grant.client)
    if flow is None:
        flow = LoginFlow.for_consent(sso.account, sso.id, req.params, ui_locales=req.params.get("ui_locales"),
                                     pushed=req.grant.request.pushed)
        flow.update_data(consent_scope=scope)
        browser.own_flow(flow.id)
    else:
        flow.update_data(consent_scope=scope)
        flow.move_to("consent")
    return redirect(url_for("login.step", flow_id=flow.id))


def _finish(req: checks.AuthorizationRequest, sso, flow, decision: str):
    """The code (or the refusal) goes back to the client."""
    if flow is not None:
        flow.move_to("done")
    if decision == interaction.DENIED:
        audit.record("consent.denied", actor=sso.account_id, account=sso.account, ip=caller.client_ip(),
                     client=req.grant.client.id)
        return _error(req.error(AccessDeniedError), req.response_mode)
    response = authorization.create_authorization_response(req.grant.request, grant=req.grant, grant_user=sso)
    return _respond(response, req.response_mode)


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    params = {k: v for k, v in request.values.items() if k != "_flow"}
    g.ui_locales = params.get("ui_locales")
    sso = browser.current_sso()
    flow = _resumable_flow(request.values.get("_flow"), sso)
    try:
        grant = authorization.get_consent_grant(_pushed(flow), end_user=None)
    except OAuth2Error as err:
        return _error(err, checks.response_mode_of(params), params.get("state"))
    except ValueError:
        # Authlib refuses to put characters outside RFC 6749's set into an error text,
        # which happens when it echoes a malformed parameter back: no client to return to.
        return render_template("oauth_error.html", error="invalid_request", description=None), 400
    return _decided(grant, sso, flow)


def resume(flow, sso):
    """The authorization a sign-in flow was started for, answered by the request that completed
    the sign-in (``sso``, just started), instead of a redirect to /authorize that would name the
    flow: the parameters the flow kept are checked again as /authorize checks a pushed request's."""
    try:
        grant = authorization.get_consent_grant(par.Pushed(flow.data["authorize"]), end_user=None)
    except OAuth2Error as err:
        return _error(err, checks.response_mode_of(flow.data["authorize"]), flow.data["authorize"].get("state"))
    return _decided(grant, sso, flow)


def _decided(grant, sso, flow):
    """What the checks and the interaction decide for an authorization request Authlib accepted."""
    browser.came_from(grant.client.id)
    # A pushed request's parameters are the ones that count (RFC 9126 section 4).
    params = {k: v for k, v in grant.request.payload.data.items() if k != "_flow"}
    g.ui_locales = params.get("ui_locales")
    try:
        req = checks.run(params, grant)
        decision = interaction.decide(req, sso, _resumed(flow), now=clock.now())
    except OAuth2Error as err:
        return _error(err, checks.response_mode_of(params))
    if decision == interaction.LOGIN:
        return _to_login(req)
    if decision == interaction.CONSENT:
        return _to_consent(req, sso, flow)
    return _finish(req, sso, flow, decision)


# -- PAR, token, userinfo, introspection, revocation --------------------------------


def _protocol(response):
    """A protocol endpoint's answer: kept by no cache, and a fresh DPoP nonce for a client
    that sends proofs."""
    if "DPoP" in request.headers and response.status_code < 400:
        dpop.response_nonce(response)
    return headers.no_store(response)


@bp.route("/par", methods=["POST", "OPTIONS"])
@csrf.exempt
@cors.for_clients(client_auth.claimed_client_id, "POST")
def pushed_authorization():
    return _protocol(authorization.create_endpoint_response("pushed_authorization"))


@bp.route("/token", methods=["POST", "OPTIONS"])
@csrf.exempt
@cors.for_clients(client_auth.claimed_client_id, "POST")
def token():
    """The token endpoint. Plain client-credentials, refresh-token and code-exchange requests
    are answered before Flask's dispatch (web/lean.py), as this view answers them; the rest come
    here."""
    return _protocol(authorization.create_token_response())


@bp.route("/userinfo", methods=["GET", "POST", "OPTIONS"])
@csrf.exempt
@cors.for_clients(tokens.presented_client_id, "GET, POST")
def userinfo():
    return _protocol(authorization.create_endpoint_response("userinfo"))


@bp.route("/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    """Token introspection; plain requests are answered before Flask's dispatch (web/lean.py),
    as this view answers them."""
    return _protocol(authorization.create_endpoint_response("introspection"))


@bp.route("/revoke", methods=["POST", "OPTIONS"])
@csrf.exempt
@cors.for_clients(client_auth.claimed_client_id, "POST")
def revoke():
    return _protocol(authorization.create_endpoint_response("revocation"))


# -- RP-initiated logout -------------------------------------------------------------


def _confirmed() -> bool:
    if request.method != "POST" or request.form.get("confirm") != "yes":
        return False
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (CSRFError, Exception):
        return False
    return True


def _hint_is_this_session(end_request, sso) -> bool:
    """The request carries a valid ID token of this very sign-in session: only the app it was
    issued to has it, so the request is that app's and needs no question (RP-Initiated
    Logout 1.0, section 2)."""
    claims = end_request.id_token_claims
    return bool(claims) and claims.get("sid") == sso.id and claims.get("sub") == sso.account_id


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def logout():
    g.ui_locales = request.values.get("ui_locales")
    try:
        end_request = authorization.validate_endpoint_request("end_session")
    except OAuth2Error as err:
        return render_template("oauth_error.html", error=err.error, description=err.get_error_description()), 400
    sso = browser.current_sso()
    client = end_request.client
    client_name = client.display_name(current_locale()) if client is not None else None
    if end_request.redirect_uri:
        headers.allow_form_targets([end_request.redirect_uri])
    if sso is not None:
        if not (_hint_is_this_session(end_request, sso) or _confirmed()):
            fields = [(k, request.values[k]) for k in ("id_token_hint", "post_logout_redirect_uri", "state",
                                                       "client_id", "ui_locales") if request.values.get(k)]
            status = 400 if request.form.get("confirm") == "yes" and request.method == "POST" else 200
            cancel = (client.home_uri if client is not None else None) or url_for("account.home")
            return render_template("logout_confirm.html", fields=fields, client_name=client_name,
                                   cancel_url=cancel), status
        sessions.end(sso, ip=caller.client_ip())
        session.clear()
    return authorization.create_endpoint_response("end_session", end_request) or render_template(
        "logged_out.html", client_name=client_name)
