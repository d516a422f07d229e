"""What the views share: the browser's flows and SSO session, the client address,
rendering a step with its error, and the mapping of domain errors to pages."""

from __future__ import annotations

from flask import current_app, g, render_template, request, session

from ..errors import DomainError
from ..flows import Context
from ..services import sessions

MAX_OWNED_FLOWS = 8


def login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN_PER_IP"]


def client_ip() -> str | None:
    return request.remote_addr


def context() -> Context:
    from .i18n import current_locale

    return Context(ip=client_ip(), user_agent=request.headers.get("User-Agent"), locale=current_locale())


def own_flow(flow_id: str) -> None:
    """Bind a flow to this browser: only a browser that started a flow may drive it."""
    owned = [f for f in session.get("flows", []) if f != flow_id]
    session["flows"] = (owned + [flow_id])[-MAX_OWNED_FLOWS:]


def owned_flows() -> list[str]:
    value = session.get("flows", [])
    return value if isinstance(value, list) else []


def current_sso():
    """The active SSO session of this browser, or None."""
    if "sso" not in g:
        g.sso = sessions.get_active(session.get("sid"))
    return g.sso


def renew_session(sid: str) -> None:
    """A new session cookie at login: nothing from before sign-in carries over but
    the flows in progress and the language."""
    keep = {k: session[k] for k in ("flows", "lang") if k in session}
    session.clear()
    session.update(keep)
    session["sid"] = sid
    session.permanent = False
    g.sso = None


def render_error(error: DomainError, template: str = "message.html", **context):
    return render_template(template, error=error.message(), **context), error.status


def allow_form_targets(uris) -> None:
    """Let this page's forms end in a redirect to these addresses (the relying app's
    redirect or post-logout URI): browsers apply form-action to the redirects that
    follow a form submission."""
    from urllib.parse import urlsplit

    origins = set(g.get("form_targets", ()))
    for uri in uris:
        parts = urlsplit(uri or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    g.form_targets = sorted(origins)


def security_headers(response):
    nonce = g.get("csp_nonce", "")
    form_action = " ".join(["'self'", *g.get("form_targets", ())])
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        f"script-src 'self'{f' {chr(39)}nonce-{nonce}{chr(39)}' if nonce else ''}; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["ISSUER"].startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
