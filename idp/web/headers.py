"""Security headers on every response, and the form targets this page's CSP allows."""

from __future__ import annotations

import secrets
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


def csp_nonce() -> str:
    """This page's script nonce, made when first asked for: by the page, or at the latest by
    ``security_headers`` for an HTML answer. A JSON or empty answer runs no script and gets
    none (as the guards' answers never had one), so the protocol endpoints pay nothing for it."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def _csp(nonce: str | None, form_targets) -> str:
    form_action = " ".join(["'self'", *(form_targets or ())])
    return ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
            f"script-src 'self'{f' {chr(39)}nonce-{nonce}{chr(39)}' if nonce else ''}; "
            f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


# A JSON answer's (the protocol endpoints'): no nonce, forms go nowhere else.
_CSP_WITHOUT_SCRIPTS = _csp(None, ())
_FIXED = tuple((name.lower(), name, value) for name, value in (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
))
_HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


class KnownHeaders(tuple):
    """(name, value) pairs made once and added to many answers: each value checked here as a
    header's (a string, no line break), the names also kept in lower case (``lower_names``)."""

    def __new__(cls, pairs):
        pairs = super().__new__(cls, pairs)
        for _, value in pairs:
            if type(value) is not str or "\n" in value or "\r" in value:
                raise ValueError("Header values must be strings without newline characters.")
        pairs.lower_names = tuple(name.lower() for name, _ in pairs)
        return pairs


# What ``security_headers`` adds to an answer that is not HTML, has none of these headers yet and
# whose page asked for no nonce and no form targets (every protocol endpoint's JSON answer), made
# once for an http:// and for an https:// issuer: the same headers, in the same order.
_SET_HERE = frozenset({"content-security-policy", *(key for key, _, _ in _FIXED), "strict-transport-security"})
_PLAIN = (("Content-Security-Policy", _CSP_WITHOUT_SCRIPTS), *((name, value) for _, name, value in _FIXED))
PLAIN_ANSWER_HEADERS = {False: KnownHeaders(_PLAIN), True: KnownHeaders((*_PLAIN, _HSTS))}


def security_headers(response):
    headers = response.headers
    present = {key.lower() for key, _ in headers}  # one pass instead of one per header set
    html = response.mimetype == "text/html"
    app_globals = g._get_current_object()  # one lookup through the proxy, not one per value
    if not html and present.isdisjoint(_SET_HERE) and not app_globals.get("csp_nonce") \
            and not app_globals.get("form_targets"):
        https = current_app._get_current_object().config["ISSUER"].startswith("https://")  # a cheaper look-up
        headers.extend(PLAIN_ANSWER_HEADERS[https])
        return response
    if "content-security-policy" not in present:
        nonce = csp_nonce() if html else app_globals.get("csp_nonce")
        targets = app_globals.get("form_targets")
        headers.add("Content-Security-Policy", _csp(nonce, targets) if nonce or targets else _CSP_WITHOUT_SCRIPTS)
    for key, name, value in _FIXED:
        if key not in present:
            headers.add(name, value)
    if "strict-transport-security" not in present and current_app.config["ISSUER"].startswith("https://"):
        headers.add(*_HSTS)
    if html and "cache-control" not in present:
        headers.add("Cache-Control", "no-store")
    return response
