"""Endpoints skip Flask-Limiter's search for limits only where it finds none, and its before-request
check only where that has nothing to count."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_limiter import Limiter

from idp import create_app
from idp.extensions import limiter
from idp.web import unlimited
from idp.web.guards import PROTOCOL_ENDPOINTS

SETTINGS = {"ENV": "production", "ISSUER": "http://127.0.0.1", "DATABASE_URL": "sqlite://", "SECRET_KEY": "s" * 64,
            "REDIS_URL": "", "MAIL_SERVER": "", "RATELIMIT_ENABLED": True}


def test_the_protocol_endpoints_have_no_limits_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app(SETTINGS)
    assert unlimited.without_limits(app, limiter, PROTOCOL_ENDPOINTS) == PROTOCOL_ENDPOINTS


def test_an_endpoint_with_a_limit_is_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app(SETTINGS)
    limited = {"login.submit", "support.search"} & set(app.view_functions)
    assert limited
    assert not unlimited.without_limits(app, limiter, [*PROTOCOL_ENDPOINTS, *limited]) & limited


def test_default_limits_switch_the_skip_off(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app({**SETTINGS, "RATELIMIT_DEFAULT": "100 per minute"})
    try:
        assert unlimited.without_limits(app, limiter, PROTOCOL_ENDPOINTS) == frozenset()
    finally:
        limiter.limit_manager.set_default_limits([])


def test_each_app_skips_what_it_found(tmp_path, monkeypatch):
    """The limiter is shared by every app made in a process: each app its own check, its own set."""
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    plain = create_app(SETTINGS)
    try:
        with_defaults = create_app({**SETTINGS, "RATELIMIT_DEFAULT": "100 per minute"})
    finally:
        limiter.limit_manager.set_default_limits([])
    assert plain.extensions[unlimited.EXTENSION] >= PROTOCOL_ENDPOINTS
    assert with_defaults.extensions[unlimited.EXTENSION] == frozenset()
    for app in (plain, with_defaults):
        hooks = app.before_request_funcs[None]
        assert limiter._check_request_limit not in hooks
        assert [getattr(hook, "__name__", "") for hook in hooks].count("check_request_limit") == 1


def test_no_endpoint_has_anything_to_count_before_the_request(tmp_path, monkeypatch):
    """No blueprint has limits: the views without limits have nothing to count, those with
    limits are counted by their decorators."""
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app(SETTINGS)
    skipped = app.extensions[unlimited.EXTENSION]
    assert skipped == unlimited.nothing_before(app, limiter, app.view_functions) == frozenset(app.view_functions)
    assert {"oauth.authorize", "login.step", "account.home", "health.healthz"} <= skipped
    assert unlimited.without_limits(app, limiter, app.view_functions) <= skipped
    limited = {"login.submit", "login.challenge", "login.password_check", "support.search"}
    assert limited <= skipped
    assert not unlimited.without_limits(app, limiter, limited)


def _app_with_a_limited_blueprint(skipping: bool) -> Flask:
    app = Flask(__name__)
    app.config.update(RATELIMIT_STORAGE_URI="memory://", RATELIMIT_STRATEGY="moving-window")
    own = Limiter(key_func=lambda: "one client", app=app)
    limited = Blueprint("limited", __name__)

    @limited.route("/plain")
    def plain():
        return "plain"

    @limited.route("/decorated")
    @own.limit("3 per minute")
    def decorated():
        return "decorated"

    @limited.route("/added")
    @own.limit("3 per minute", override_defaults=False)
    def added():
        return "added"

    @app.route("/free")
    def free():
        return "free"

    own.limit("2 per minute")(limited)
    app.register_blueprint(limited)
    if skipping:
        unlimited.init_app(app, own)
    return app


def test_a_blueprint_limit_is_counted_before_the_request_where_the_view_has_none():
    """As Flask-Limiter counts without the skip: the blueprint's limit before the request for a
    view without limits of its own; for a view with limits, its decorator's (with the blueprint's
    where they do not override it)."""
    skipping = _app_with_a_limited_blueprint(skipping=True)
    assert skipping.extensions[unlimited.EXTENSION] == {"limited.decorated", "limited.added", "free", "static"}
    answers = {}
    for app in (skipping, _app_with_a_limited_blueprint(skipping=False)):
        http = app.test_client()
        answers[app] = {path: [http.get(path).status_code for _ in range(5)]
                        for path in ("/plain", "/decorated", "/added", "/free")}
    assert answers[skipping] == {"/plain": [200, 200, 429, 429, 429], "/decorated": [200, 200, 200, 429, 429],
                                 "/added": [200, 200, 429, 429, 429], "/free": [200] * 5}
    assert len(set(map(str, answers.values()))) == 1


def test_a_skipped_page_is_still_served_and_a_limited_one_still_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app({**SETTINGS, "RATELIMIT_LOGIN_PER_IP": "2 per minute"})
    http = app.test_client()
    assert [http.get("/.well-known/openid-configuration").status_code for _ in range(3)] == [200] * 3
    assert [http.get("/login/challenge").status_code for _ in range(3)] == [200, 200, 429]
