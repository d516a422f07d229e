"""Security headers on every response, and the form targets this page's CSP allows."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, g

from .. import redirect_uris


def allow_form_targets(uris) -> None:
    """Let this page's forms end in a redirect to these addresses (the relying app's
    redirect or post-logout URI): browsers apply form-action to the redirects that
    follow a form submission."""
    origins = set(g.get("form_targets", ()))
    for uri in uris:
        parts = urlsplit(uri or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
        elif redirect_uris.is_private_use(uri or ""):
            origins.add(f"{parts.scheme}:")  # a native app's own scheme (RFC 8252 section 7.1)
    g.form_targets = sorted(origins)


def no_store(response):
    """Kept by no cache: tokens, challenges, health answers (Pragma for HTTP/1.0 caches, RFC 6749 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


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
