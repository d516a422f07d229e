"""Endpoints skip Flask-Limiter's search for limits only where it finds none."""

from __future__ import annotations

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
    """The limiter is shared by every app made in a process: one filter, each app's own set."""
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    plain = create_app(SETTINGS)
    try:
        with_defaults = create_app({**SETTINGS, "RATELIMIT_DEFAULT": "100 per minute"})
    finally:
        limiter.limit_manager.set_default_limits([])
    assert plain.extensions[unlimited.EXTENSION] >= PROTOCOL_ENDPOINTS
    assert with_defaults.extensions[unlimited.EXTENSION] == frozenset()
    assert limiter._request_filters.count(unlimited._skipped) == 1


def test_every_endpoint_without_limits_skips_the_search(tmp_path, monkeypatch):
    """Pages as well as the protocol endpoints: all that has no limit, and nothing that has one."""
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app(SETTINGS)
    skipped = app.extensions[unlimited.EXTENSION]
    assert skipped == unlimited.without_limits(app, limiter, app.view_functions)
    assert {"oauth.authorize", "login.step", "account.home", "health.healthz"} <= skipped
    assert PROTOCOL_ENDPOINTS <= skipped
    assert not {"login.submit", "login.challenge", "login.password_check", "support.search"} & skipped


def test_a_skipped_page_is_still_served_and_a_limited_one_still_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    app = create_app({**SETTINGS, "RATELIMIT_LOGIN_PER_IP": "2 per minute"})
    http = app.test_client()
    assert [http.get("/.well-known/openid-configuration").status_code for _ in range(3)] == [200] * 3
    assert [http.get("/login/challenge").status_code for _ in range(3)] == [200, 200, 429]
