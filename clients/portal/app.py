"""The demo bookkeeping portal: an OpenID Connect relying party.

It signs people in at the identity provider with the authorization code flow,
PKCE (S256), ``state`` and ``nonce``, shows what it received (ID token claims,
the userinfo response, the ``administrations`` claim), refreshes tokens with
the refresh_token grant and signs out through the provider's end-session
endpoint (RP-initiated logout).

Everything the portal knows about the provider comes from discovery
(``ISSUER/.well-known/openid-configuration``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from hmac import compare_digest
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from joserfc.errors import JoseError

from .sessions import MemorySessionInterface

CLIENT_NAME = "portal"
SCOPE = "openid profile email offline_access administrations"
DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_PORTAL_URL = "http://127.0.0.1:5001"
HTTP_TIMEOUT = 10  # seconds, for every back-channel call to the provider
PROMPT_VALUES = {"none", "login", "consent", "select_account"}
TIME_CLAIMS = {"exp", "iat", "nbf", "auth_time", "updated_at"}


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


class ProviderError(RuntimeError):
    """The provider could not be reached or answered something unusable."""


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    portal_url: str
    secret_key: str
    token_endpoint_auth_method: str

    @property
    def redirect_uri(self) -> str:
        return self.portal_url + "/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.portal_url + "/"

    @property
    def metadata_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"


def _base_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an http(s) base URL such as {default}, got {value!r}")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the portal's settings from the environment (or the given mapping)."""
    env = os.environ if environ is None else environ
    missing = [name for name in ("PORTAL_CLIENT_ID", "PORTAL_CLIENT_SECRET") if not (env.get(name) or "").strip()]
    if missing:
        raise ConfigError(
            f"missing required setting {' and '.join(missing)}; register the portal with "
            "`idp clients create ... --json` and export its client_id and client_secret"
        )
    auth_method = (env.get("PORTAL_TOKEN_ENDPOINT_AUTH_METHOD") or "client_secret_basic").strip()
    if auth_method not in ("client_secret_basic", "client_secret_post"):
        raise ConfigError(
            "PORTAL_TOKEN_ENDPOINT_AUTH_METHOD must be client_secret_basic or client_secret_post, "
            f"got {auth_method!r}"
        )
    return Settings(
        issuer=_base_url(env, "PORTAL_ISSUER", DEFAULT_ISSUER),
        client_id=env["PORTAL_CLIENT_ID"].strip(),
        client_secret=env["PORTAL_CLIENT_SECRET"].strip(),
        portal_url=_base_url(env, "PORTAL_URL", DEFAULT_PORTAL_URL),
        secret_key=env.get("PORTAL_SECRET_KEY") or secrets.token_hex(32),
        token_endpoint_auth_method=auth_method,
    )


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """Build the portal. Settings come from ``os.environ`` unless a mapping is given.

    Raises :class:`ConfigError` when a required setting is missing or malformed.
    """
    settings = load_settings(environ)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # The provider usually runs on the same host (another port); cookies do not
        # care about ports, so the portal's cookie needs a name of its own.
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.portal_url.startswith("https://"),
    )
    app.session_interface = MemorySessionInterface()
    app.extensions["portal_settings"] = settings

    oauth = OAuth(app)
    oauth.register(
        CLIENT_NAME,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=settings.metadata_url,
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": settings.token_endpoint_auth_method,
            "default_timeout": HTTP_TIMEOUT,
        },
    )

    app.register_blueprint(bp)
    app.jinja_env.globals.update(csrf_token=_csrf_token, mask=mask_token)
    app.jinja_env.filters.update(claim_value=format_claim_value, utc=format_timestamp)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


# --------------------------------------------------------------------------- helpers


def _settings() -> Settings:
    return current_app.extensions["portal_settings"]


def _client():
    return getattr(current_app.extensions["authlib.integrations.flask_client"], CLIENT_NAME)


def _metadata() -> dict:
    """The provider's discovery document, checked against the configured issuer."""
    try:
        metadata = _client().load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderError(
            f"The sign-in service could not be reached at {_settings().metadata_url} ({exc.__class__.__name__})."
        ) from exc
    issuer = str(metadata.get("issuer", "")).rstrip("/")
    if issuer != _settings().issuer:
        raise ProviderError(
            f"The discovery document names issuer {metadata.get('issuer')!r}, expected {_settings().issuer!r}."
        )
    return metadata


def mask_token(value: str | None) -> str:
    """Never show a token in full: its first 8 characters and an ellipsis."""
    if not value:
        return "(none)"
    return value[:8] + "…"


def format_timestamp(value) -> str:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)


def format_claim_value(value, name: str = "") -> str:
    if name in TIME_CLAIMS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value} ({format_timestamp(value)})"
    if isinstance(value, (dict, list, tuple, bool)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _csrf_token() -> str:
    token = session.get("csrf_token")
    if not token:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    expected = session.get("csrf_token")
    given = request.form.get("csrf_token", "")
    if not expected or not compare_digest(expected, given):
        abort(400, description="This form has expired. Reload the page and try again.")


def _expires_at(token: Mapping) -> int | None:
    if token.get("expires_at") is not None:
        return int(token["expires_at"])
    if token.get("expires_in") is not None:
        return int(time.time()) + int(token["expires_in"])
    return None


def _error_page(title: str, error: str | None, description: str | None, status: int):
    return render_template("error.html", title=title, error=error, description=description), status


# --------------------------------------------------------------------------- views

bp = Blueprint("portal", __name__)


@bp.app_errorhandler(400)
def _bad_request(exc):
    return _error_page("Bad request", "bad_request", exc.description, 400)


@bp.app_errorhandler(ProviderError)
def _provider_error(exc):
    return _error_page("The sign-in service is unavailable", "provider_unavailable", str(exc), 502)


@bp.get("/")
def index():
    signed_out = False
    logout_error = None
    if "state" in request.args:
        # The provider sends the browser back here after RP-initiated logout.
        try:
            _client().validate_logout_response()
            signed_out = True
        except OAuthError:
            logout_error = (
                "The sign-out response does not belong to a sign-out started in this browser "
                "(unknown or expired state)."
            )

    auth = session.get("auth")
    userinfo = userinfo_error = None
    if auth:
        try:
            userinfo = dict(
                _client().userinfo(token={"access_token": auth["access_token"], "token_type": "Bearer"})
            )
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            userinfo_error = f"The userinfo endpoint refused the access token (HTTP {status})."
            if auth.get("expires_at") and auth["expires_at"] <= time.time():
                userinfo_error += " The access token has expired; refresh the tokens."
        except (requests.RequestException, ValueError, KeyError) as exc:
            userinfo_error = f"The userinfo endpoint could not be reached ({exc.__class__.__name__})."

    claims = (auth or {}).get("claims", {})
    merged = {**claims, **(userinfo or {})}
    administrations = claims.get("administrations")
    if administrations is None and userinfo:
        administrations = userinfo.get("administrations")

    messages = get_flashed_messages(with_categories=True)
    return render_template(
        "index.html",
        auth=auth,
        claims=claims,
        userinfo=userinfo,
        userinfo_error=userinfo_error,
        administrations=administrations,
        display_name=merged.get("name")
        or " ".join(p for p in (merged.get("given_name"), merged.get("family_name")) if p)
        or merged.get("preferred_username")
        or claims.get("sub"),
        display_email=merged.get("email"),
        signed_out=signed_out,
        logout_error=logout_error,
        refresh_ok=[m for c, m in messages if c == "refresh-ok"],
        refresh_errors=[m for c, m in messages if c == "refresh-error"],
        now=int(time.time()),
    )


@bp.get("/login")
def login():
    _metadata()  # fail early with a clear page when the provider is down or misconfigured
    extra = {}
    login_hint = request.args.get("login_hint", "").strip()
    if login_hint:
        extra["login_hint"] = login_hint
    prompt = request.args.get("prompt", "").strip()
    if prompt in PROMPT_VALUES:
        extra["prompt"] = prompt
    return _client().authorize_redirect(_settings().redirect_uri, **extra)


@bp.get("/callback")
def callback():
    error = request.args.get("error")
    if error:
        state = request.args.get("state")
        if state:
            _client().framework.clear_state_data(session, state)
        return _error_page(
            "Sign-in did not complete", error, request.args.get("error_description"), 400
        )
    if not request.args.get("code"):
        return _error_page("Sign-in did not complete", "invalid_request", "The response carries no code.", 400)

    try:
        token = _client().authorize_access_token()
    except MismatchingStateError:
        return _error_page(
            "Sign-in did not complete",
            "invalid_state",
            "This answer does not belong to a sign-in started in this browser (unknown or expired state). "
            "Start again.",
            400,
        )
    except OAuthError as exc:
        return _error_page("Sign-in did not complete", exc.error or "oauth_error", exc.description, 400)
    except requests.RequestException as exc:
        raise ProviderError(
            f"The token endpoint could not be reached ({exc.__class__.__name__})."
        ) from exc
    except (JoseError, AuthlibBaseError, ValueError) as exc:
        return _error_page(
            "Sign-in did not complete", "invalid_id_token", f"The ID token was rejected: {exc}", 400
        )

    claims = token.get("userinfo")
    if not token.get("id_token") or not claims:
        return _error_page(
            "Sign-in did not complete", "invalid_id_token", "The provider returned no ID token.", 400
        )

    # A fresh session, under a new id, for the signed-in person.
    session.clear()
    session.rotate()
    session["auth"] = {
        "id_token": token["id_token"],
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token"),
        "expires_at": _expires_at(token),
        "scope": token.get("scope"),
        "claims": dict(claims),
    }
    return redirect(url_for(".index"))


@bp.post("/refresh")
def refresh():
    _check_csrf()
    auth = session.get("auth")
    if not auth:
        return redirect(url_for(".index"))
    if not auth.get("refresh_token"):
        flash("The provider issued no refresh token for this sign-in (offline_access not granted).", "refresh-error")
        return redirect(url_for(".index"))

    client = _client()
    try:
        _metadata()
        # scope=None: ask for the scope that was granted, nothing more.
        token = client.fetch_access_token(
            grant_type="refresh_token", refresh_token=auth["refresh_token"], scope=None
        )
        claims = auth["claims"]
        if token.get("id_token"):
            new_claims = dict(client.parse_id_token(token, nonce=None))
            if new_claims.get("sub") != claims.get("sub"):
                raise ValueError("the refreshed ID token is about another subject")
            claims = new_claims
    except OAuthError as exc:
        message = f"The provider refused to refresh the tokens: {exc.error}"
        if exc.description:
            message += f" ({exc.description})"
        flash(message + ". Sign in again to get new tokens.", "refresh-error")
        return redirect(url_for(".index"))
    except ProviderError as exc:
        flash(str(exc), "refresh-error")
        return redirect(url_for(".index"))
    except requests.RequestException as exc:
        flash(f"The token endpoint could not be reached ({exc.__class__.__name__}).", "refresh-error")
        return redirect(url_for(".index"))
    except (JoseError, AuthlibBaseError, ValueError) as exc:
        flash(f"The refreshed ID token was rejected: {exc}.", "refresh-error")
        return redirect(url_for(".index"))

    auth = {
        **auth,
        "access_token": token["access_token"],
        # Without rotation the provider may keep the old refresh token valid.
        "refresh_token": token.get("refresh_token") or auth["refresh_token"],
        "expires_at": _expires_at(token),
        "id_token": token.get("id_token") or auth["id_token"],
        "scope": token.get("scope") or auth.get("scope"),
        "claims": claims,
    }
    session["auth"] = auth
    if auth["expires_at"]:
        flash(
            f"Tokens refreshed. The new access token expires at {format_timestamp(auth['expires_at'])} "
            f"(in {max(0, auth['expires_at'] - int(time.time()))} seconds).",
            "refresh-ok",
        )
    else:
        flash("Tokens refreshed. The provider did not say when the new access token expires.", "refresh-ok")
    return redirect(url_for(".index"))


@bp.post("/logout")
def logout():
    _check_csrf()
    auth = session.get("auth")
    session.clear()  # the local sign-out happens whatever the provider does
    session.rotate()
    if not auth:
        return redirect(url_for(".index"))
    settings = _settings()
    try:
        metadata = _metadata()
        if not metadata.get("end_session_endpoint"):
            raise ProviderError("The provider offers no end_session_endpoint.")
        # Authlib adds a random state and keeps it in the session for validate_logout_response().
        return _client().logout_redirect(
            post_logout_redirect_uri=settings.post_logout_redirect_uri,
            id_token_hint=auth["id_token"],
            client_id=settings.client_id,
        )
    except ProviderError as exc:
        return _error_page(
            "Signed out of the portal only",
            "provider_logout_unavailable",
            f"You are signed out of the portal, but not at the sign-in service: {exc}",
            502,
        )
