"""idp: the OpenID Connect identity provider of the accounting suite."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from flask import Flask, templating

__version__ = "0.1.0"


def _resource_dir(name: str) -> str:
    """templates/, static/, translations/ and migrations/ sit beside the package in a
    checkout and under <prefix>/share/idp in an installed wheel."""
    here = Path(__file__).resolve().parent.parent / name
    if here.exists():
        return str(here)
    return str(Path(sys.prefix) / "share" / "idp" / name)


class _Templates(templating.Environment):
    """Flask's template environment, whose templates look their globals up in its own ``globals``
    dict. Jinja gives each template a ChainMap of the template's own globals (ours have none) over
    the environment's: every render and every ``{% from ... import ... %}`` of a page copies and
    compares its keys one Python-level look-up at a time. The dict itself is what that ChainMap
    would show, changes made to the environment's globals later included."""

    def make_globals(self, d):
        return self.globals if not d else super().make_globals(d)

    def _load_template(self, name, globals):
        # Jinja adds the globals asked for with a template it has loaded already to that template's
        # globals, which are ours: they get a layer of their own first, as Jinja's ChainMap has.
        template = super()._load_template(name, None)
        if globals:
            if template.globals is self.globals:
                template.globals = super().make_globals(None)
            template.globals.update(globals)
        return template


class _Flask(Flask):
    """Flask, remembering the functions it found plain ``def`` (its views and hooks), which it
    asks about again each time it calls one: eight times per request."""

    MAX_REMEMBERED = 1024
    jinja_environment = _Templates

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain = set()

    def ensure_sync(self, func):
        try:
            if func in self._plain:
                return func
        except TypeError:  # unhashable: asked every time, as Flask does
            return super().ensure_sync(func)
        synced = super().ensure_sync(func)
        if synced is func and len(self._plain) < self.MAX_REMEMBERED:
            self._plain.add(func)
        return synced

    def log_exception(self, exc_info):
        """Flask's error line with its traceback, for bugs. A dependency away (the database
        restarting under a request's commit, Redis gone) is no bug: web.unavailable answers it
        with a 503 and logs it as a warning."""
        from .web import unavailable

        if unavailable.is_away(exc_info[1]):
            return
        super().log_exception(exc_info)


def create_app(test_config: dict | None = None) -> Flask:
    from . import config, unit_of_work
    from .extensions import babel, csrf, db, limiter, mail
    from .oauth import init_oauth
    from .web import (access, account, connectors, details, dev, documents, errors, firm, headers, invitations, login,
                      oauth, security, signup, support)
    from .web.i18n import current_locale, template_gettext

    app = _Flask(
        __name__,
        template_folder=_resource_dir("templates"),
        static_folder=_resource_dir("static"),
        instance_path=os.environ.get("IDP_INSTANCE_PATH") or str(Path.cwd() / "instance"),
    )
    config.load(app, test_config)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = _resource_dir("translations")
    # "/login//x" is not found rather than redirected: Werkzeug's redirect to the merged path
    # would name the host the request claimed (Host header), not the issuer.
    app.url_map.merge_slashes = False
    from .web.cookie_sessions import CookieSessions

    app.session_interface = CookieSessions()

    from .web import guards

    app.before_request(guards.before_request)  # before CSRF protection: it must see clean input
    db.init_app(app)
    mail.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=current_locale)
    from . import timezones

    timezones.init_app(app)
    limiter.init_app(app)
    init_oauth(app)
    unit_of_work.init_app(app)

    if app.config["DATABASE_URL"].startswith("sqlite"):
        _sqlite_pragmas(app)

    for bp in (oauth.bp, login.bp, account.bp, details.bp, security.bp, invitations.bp, access.bp, firm.bp, signup.bp,
               connectors.bp, support.bp, documents.bp, dev.bp):
        app.register_blueprint(bp)
    from .web import lean

    # The lean token and introspection path sees bodies the limit has read and counted.
    app.wsgi_app = guards.BodyLimit(lean.LeanProtocol(app, app.wsgi_app), app.config["MAX_CONTENT_LENGTH"])

    app.after_request(headers.security_headers)  # also makes the CSP nonce, when nothing asked for it before

    @app.context_processor
    def _globals():
        from flask import has_request_context, request, url_for

        from .web import browser

        def lang_url(code: str) -> str:
            args = {**request.args.to_dict(), "lang": code}
            try:
                return url_for(request.endpoint, **(request.view_args or {}), **args)
            except Exception:
                return "?lang=" + code

        gettext = template_gettext()
        return {
            "_": gettext,
            "gettext": gettext,
            "lang_url": lang_url,
            "product": app.config["PRODUCT_NAME"],
            "locale": current_locale(),
            "languages": app.config["LANGUAGES"],
            "dev_mailbox": app.config["DEV_MAILBOX"],
            "support_contact": app.config["SUPPORT_CONTACT"],
            "back_link": browser.back_link,
            **(documents.urls() if has_request_context() else {}),  # mail renders outside requests
        }

    from sqlalchemy.exc import DataError

    app.register_error_handler(DataError, guards.unrepresentable_input)
    from .web import unavailable

    unavailable.init_app(app)  # Redis or the database away: 503, never a 500

    errors.init_app(app)

    from . import ops

    ops.init_app(app)  # health, metrics, request ids, logs, forwarded headers: wraps every middleware
    from .web import unlimited

    unlimited.init_app(app, limiter)  # once every blueprint is registered
    from .telemetry import logs

    logging.basicConfig(level=logging.INFO, format=logs.TEXT_FORMAT)
    return app


def _sqlite_pragmas(app: Flask) -> None:
    from sqlalchemy import event

    from . import sqlite_checkpoints, sqlite_writers
    from .extensions import db

    with app.app_context():
        engine = db.engine
    sqlite_writers.take_turns(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={sqlite_writers.BUSY_TIMEOUT_SECONDS * 1000}")
        # Every process's commits (the workers', the CLI's) leave the checkpoints to `idp serve`'s loop.
        cursor.execute(f"PRAGMA wal_autocheckpoint={sqlite_checkpoints.FALLBACK_PAGES}")
        cursor.close()
