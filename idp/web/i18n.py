"""Choosing the language: ?lang=, then the relying app's ui_locales, then the browser."""

from __future__ import annotations

from flask import current_app, g, has_request_context, request, session
from flask_babel import get_translations
from jinja2 import pass_context
from markupsafe import Markup


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
    return _browser_language(languages)


def _browser_language(languages) -> str:
    """The browser's choice (Accept-Language) among ``languages``: the same throughout a
    request, which asks for its language several times (the step, the page, Babel)."""
    chosen = g.get("_browser_language")
    if chosen is None or chosen[0] is not languages:
        chosen = g._browser_language = (languages, request.accept_languages.best_match(languages) or languages[0])
    return chosen[1]


def template_gettext():
    """The templates' ``_``, bound to the translations of this render's locale: found once per
    render instead of once per string (Flask-Babel's looks up its domain, the locale and its
    cached catalogue at every call). Like Jinja's new-style gettext: the translation is marked
    safe where autoescaping is on, and its %(name)s placeholders filled with escaped values."""
    translate = get_translations().ugettext

    @pass_context
    def gettext(__context, __string: str, **variables):
        rv = translate(__string)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    return gettext
