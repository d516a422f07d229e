"""The protocol endpoints: discovery, JWKS, authorize, token, userinfo, introspection,
revocation and RP-initiated logout."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select

from .. import clock
from ..errors import DomainError
from ..extensions import csrf, db
from ..flows import LoginFlow
from ..models import Consent
from ..oauth import authorization, backchannel
from ..oauth.server import SCOPES
from ..services import audit, keys, sessions
from . import browser, caller, headers

bp = Blueprint("oauth", __name__)

PROMPTS = {"none", "login", "consent", "select_account"}


@bp.route("/.well-known/openid-configuration")
def discovery():
    issuer = current_app.config["ISSUER"]
    doc = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/authorize",
        "token_endpoint": issuer + "/token",
        "userinfo_endpoint": issuer + "/userinfo",
        "jwks_uri": issuer + "/jwks.json",
        "introspection_endpoint": issuer + "/introspect",
        "revocation_endpoint": issuer + "/revoke",
        "end_session_endpoint": issuer + "/logout",
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "at_hash",
                             "name", "email", "email_verified", "administrations"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "ui_locales_supported": current_app.config["LANGUAGES"],
        "prompt_values_supported": sorted(PROMPTS - {"select_account"}),
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
    response = jsonify(doc)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.route("/jwks.json")
def jwks():
    response = jsonify(keys.public_jwks())
    response.headers["Cache-Control"] = "public, max-age=60"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- authorize -----------------------------------------------------------------


def _request_params() -> dict:
    return {k: v for k, v in request.values.items() if k != "_flow"}


def _with_iss(location: str) -> str:
    """RFC 9207: the authorization response names its issuer."""
    parts = urlsplit(location)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k in ("code", "error") for k, _ in query) and not any(k == "iss" for k, _ in query):
        query.append(("iss", current_app.config["ISSUER"]))
    return parts._replace(query=urlencode(query)).geturl()


def _respond(status, location_or_body, headers, response_mode: str):
    location = dict(headers).get("Location") if headers else None
    if location is None:
        return authorization.handle_response(status, location_or_body, headers)
    location = _with_iss(location)
    if response_mode == "form_post":
        parts = urlsplit(location)
        target = parts._replace(query="").geturl()
        fields = parse_qsl(parts.query, keep_blank_values=True)
        response = current_app.make_response(render_template("form_post.html", action=target, fields=fields))
        origin = f"{parts.scheme}://{parts.netloc}"
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}; frame-ancestors 'none'"
        )
        return response
    return redirect(location, code=302)


def _error(err: OAuth2Error, response_mode: str = "query", state: str | None = None):
    """Errors go back to the client when its redirect URI is known, else to an error page."""
    if state and not err.state:
        err.state = state
    if not err.redirect_uri:
        return render_template("oauth_error.html", error=err.error, description=err.get_error_description()), 400
    status, body, headers = err()
    return _respond(status, body, headers, response_mode)


def _id_token_hint_sub(hint: str) -> str:
    try:
        token = jwt.decode(hint, keys.public_keyset(), algorithms=["RS256"])
    except (JoseError, ValueError):
        raise InvalidRequestError("Invalid 'id_token_hint'.") from None
    if token.claims.get("iss") != current_app.config["ISSUER"] or not token.claims.get("sub"):
        raise InvalidRequestError("Invalid 'id_token_hint'.")
    return token.claims["sub"]


def _consent_covers(account_id: str, client_id: str, scope: str) -> bool:
    wanted = set(scope.split())
    for granted in db.session.scalars(
        select(Consent.scope).where(Consent.account_id == account_id, Consent.client_id == client_id)
    ):
        if wanted <= set(granted.split()):
            return True
    return False


def _resumable_flow(flow_id: str | None):
    if not flow_id:
        return None
    try:
        flow = LoginFlow.load(flow_id, browser.owned_flows())
    except DomainError:
        return None
    if flow.state != "resume" or flow.expired():
        return None
    return flow


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    params = _request_params()
    response_mode = params.get("response_mode") or "query"
    g.ui_locales = params.get("ui_locales")
    try:
        grant = authorization.get_consent_grant(end_user=None)
    except OAuth2Error as err:
        return _error(err, response_mode if response_mode in ("query", "form_post") else "query", params.get("state"))
    except ValueError:
        # Authlib refuses to put characters outside RFC 6749's set into an error text,
        # which happens when it echoes a malformed parameter back: no client to return to.
        return render_template("oauth_error.html", error="invalid_request", description=None), 400
    redirect_uri = grant.redirect_uri
    state = params.get("state")

    def fail(err_cls, description=None):
        err = err_cls(description, redirect_uri=redirect_uri, state=state) if description else err_cls(redirect_uri=redirect_uri, state=state)
        return _error(err, response_mode if response_mode in ("query", "form_post") else "query")

    if response_mode not in ("query", "form_post"):
        return fail(InvalidRequestError, "Unsupported 'response_mode'.")
    if len(params.get("nonce") or "") > 500 or "\x00" in (params.get("nonce") or ""):
        return fail(InvalidRequestError, "The 'nonce' is too long or contains a NUL character.")
    prompts = set(params.get("prompt", "").split())
    if not prompts <= PROMPTS or ("none" in prompts and len(prompts) > 1):
        return fail(InvalidRequestError, "Invalid 'prompt'.")
    max_age = None
    if params.get("max_age") not in (None, ""):
        try:
            max_age = int(params["max_age"])
            if max_age < 0:
                raise ValueError
        except ValueError:
            return fail(InvalidRequestError, "Invalid 'max_age'.")
    hint_sub = None
    if params.get("id_token_hint"):
        try:
            hint_sub = _id_token_hint_sub(params["id_token_hint"])
        except OAuth2Error as err:
            err.redirect_uri, err.state = redirect_uri, state
            return _error(err, response_mode)

    sso = browser.current_sso()
    flow = _resumable_flow(request.values.get("_flow"))
    if flow is not None and (sso is None or flow.row.account_id != sso.account_id):
        flow = None
    just_signed_in = flow is not None and flow.data.get("authenticated_at") is not None
    now = clock.now()
    need_login = (
        sso is None
        or (hint_sub is not None and hint_sub != sso.account_id)
        or (not just_signed_in and "login" in prompts)
        or (not just_signed_in and max_age is not None and (now - sso.auth_time).total_seconds() > max_age)
    )
    if need_login:
        if "none" in prompts or (just_signed_in and hint_sub is not None and hint_sub != sso.account_id):
            # Also when the person just signed in as someone else than the hint names: no loop.
            return fail(LoginRequiredError)
        flow = LoginFlow.start(params, login_hint=params.get("login_hint"), ui_locales=params.get("ui_locales"))
        db.session.commit()
        browser.own_flow(flow.id)
        return redirect(url_for("login.step", flow_id=flow.id))

    account = sso.account
    client = grant.client
    scope = grant.request.scope or ""
    if not client.first_party and (flow is None or flow.data.get("consent") is None):
        if "consent" in prompts or not _consent_covers(account.id, client.id, scope):
            if "none" in prompts:
                return fail(ConsentRequiredError)
            if flow is None:
                flow = LoginFlow.for_consent(account, sso.id, params, ui_locales=params.get("ui_locales"))
                flow.update_data(consent_scope=scope)
                db.session.commit()
                browser.own_flow(flow.id)
            else:
                flow.update_data(consent_scope=scope)
                flow.move_to("consent")
                db.session.commit()
            return redirect(url_for("login.step", flow_id=flow.id))
    if flow is not None:
        decision = flow.data.get("consent")
        flow.move_to("done")
        db.session.commit()
        if decision == "deny":
            audit.record("consent.denied", actor=account.id, account=account, ip=caller.client_ip(), client=client.id)
            db.session.commit()
            return fail(AccessDeniedError)
    g.sso_session = sso
    try:
        redirect_to = grant.validate_authorization_request()
        status, body, headers = grant.create_authorization_response(redirect_to, account)
    except OAuth2Error as err:
        err.state = state
        return _error(err, response_mode)
    return _respond(status, body, headers, response_mode)


# -- token, userinfo, introspection, revocation ------------------------------------


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/token", methods=["POST"])
@csrf.exempt
def token():
    g.remote_addr = caller.client_ip()
    return _no_store(authorization.create_token_response())


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    return _no_store(authorization.create_endpoint_response("userinfo"))


@bp.route("/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    return _no_store(authorization.create_endpoint_response("introspection"))


@bp.route("/revoke", methods=["POST"])
@csrf.exempt
def revoke():
    return _no_store(authorization.create_endpoint_response("revocation"))


# -- RP-initiated logout -------------------------------------------------------------


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def logout():
    g.ui_locales = request.values.get("ui_locales")
    try:
        end_request = authorization.validate_endpoint_request("end_session")
    except OAuth2Error as err:
        return render_template("oauth_error.html", error=err.error, description=err.get_error_description()), 400
    sso = browser.current_sso()
    client_name = end_request.client.name if end_request.client is not None else None
    fields = [
        (k, request.values[k])
        for k in ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "ui_locales")
        if request.values.get(k)
    ]
    if end_request.redirect_uri:
        headers.allow_form_targets([end_request.redirect_uri])
    if sso is not None and (request.method == "GET" or request.form.get("confirm") != "yes"):
        return render_template("logout_confirm.html", fields=fields, client_name=client_name)
    if sso is not None:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (CSRFError, Exception):
            return render_template("logout_confirm.html", fields=fields, client_name=client_name), 400
        sessions.end(sso, ip=caller.client_ip())
        db.session.commit()
        session.clear()
        backchannel.notify(sso)
    authorization.create_endpoint_response("end_session", end_request)
    if end_request.redirect_uri:
        return redirect(end_request.redirect_uri, code=302)
    return render_template("logged_out.html", client_name=client_name)
