"""Policy numbers are settings: documented defaults in idp.config, IDP_* overrides, checked at start-up."""

from __future__ import annotations

import pytest
from flask import Flask

from idp import config


def _load(monkeypatch, **env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = Flask("t")
    config.load(app, {"TESTING": True, "SECRET_KEY": "x" * 40, "ISSUER": "http://idp.test", "DATABASE_URL": "sqlite://"})
    return app


def test_policy_numbers_have_defaults(monkeypatch):
    app = _load(monkeypatch)
    assert app.config["LOCKOUT_AFTER_FAILURES"] == 5
    assert app.config["LOCKOUT_WINDOW"] == app.config["LOCKOUT_DURATION"] == 15 * 60
    assert app.config["INVITATION_LIFETIME"] == 14 * 24 * 3600
    assert app.config["RATELIMIT_CONNECTOR_STEP"] == "10 per minute; 60 per hour"


def test_environment_overrides_a_policy_number(monkeypatch):
    app = _load(monkeypatch, IDP_LOCKOUT_AFTER_FAILURES="3", IDP_RATELIMIT_PASSWORD_CHECK="5 per minute")
    assert app.config["LOCKOUT_AFTER_FAILURES"] == 3
    with app.app_context():
        assert config.limit("RATELIMIT_PASSWORD_CHECK")() == "5 per minute"


@pytest.mark.parametrize("value", ["0", "-1", "ten", "true", "1.5"])
def test_a_malformed_policy_number_stops_start_up(monkeypatch, value):
    with pytest.raises(config.ConfigError, match="IDP_CAPTCHA_LIFETIME"):
        _load(monkeypatch, IDP_CAPTCHA_LIFETIME=value)
