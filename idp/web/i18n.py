"""Choosing the language: ?lang=, then the relying app's ui_locales, then the browser."""

from __future__ import annotations

from flask import current_app, g, has_request_context, request, session


def current_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return languages[0]
    lang = request.args.get("lang")
    if lang in languages:
        session["lang"] = lang
        return lang
    if session.get("lang") in languages:
        return session["lang"]
    for tag in (g.get("ui_locales") or "").split():
        base = tag.split("-")[0].lower()
        if base in languages:
            return base
    return request.accept_languages.best_match(languages) or languages[0]
