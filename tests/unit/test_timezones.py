"""Times as people read them (idp/timezones.py), and the audit trail's readable names."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from flask import g
from flask_babel import force_locale

from idp import timezones
from idp.services import event_names

ROOT = Path(__file__).resolve().parents[2]
AT = dt.datetime(2026, 7, 1, 22, 30)  # UTC; summer time in Amsterdam, the next day in Tokyo


@pytest.mark.parametrize("name", ["Europe/Amsterdam", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC"])
def test_zones_the_system_knows(name):
    assert str(timezones.zone_named(name)) == name


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus_Mons", "../etc/passwd", "/etc/localtime", "Europe//Paris",
                                  "Europe/Amsterdam ", "A" * 100, 42, "Europe/../Europe/Amsterdam"])
def test_anything_else_is_no_zone(name):
    assert timezones.zone_named(name) is None


def test_the_browsers_zone_unnamed_the_providers_named(app):
    with app.test_request_context("/", headers={"Cookie": "idp_tz=Asia/Tokyo"}), force_locale("en"):
        assert timezones.shown(AT) == "2 Jul 2026 07:30"
        assert timezones.shown_day(AT) == "2 Jul 2026"
    with app.test_request_context("/"), force_locale("nl"):
        assert timezones.shown(AT, seconds=True) == "2 jul 2026 00:30:00 (Midden-Europese zomertijd)"
        assert timezones.shown_day(AT) == "2 jul 2026"
        assert timezones.shown(None) == "" and timezones.shown_day(None) == ""


def test_mail_shows_the_providers_zone_whatever_the_browser_said(app):
    with app.test_request_context("/", headers={"Cookie": "idp_tz=Asia/Tokyo"}), force_locale("en"):
        with timezones.shown_in(timezones.provider_zone()):
            assert timezones.shown(AT) == "2 Jul 2026 00:30 (Central European Summer Time)"
        assert timezones.shown(AT) == "2 Jul 2026 07:30" and g.get("forced_zone") is None


def test_a_wrong_provider_zone_stops_the_start(app):
    from idp import config

    app.config["TIME_ZONE"] = "Europe/Atlantis"
    with pytest.raises(config.ConfigError, match="IDP_TIME_ZONE"):
        config.validate(app)


def test_every_audited_action_has_a_readable_name():
    recorded = set()
    for path in (ROOT / "idp").rglob("*.py"):
        recorded |= set(re.findall(r'audit\.record\(\s*"([a-z_.0-9]+)"', path.read_text()))
    recorded |= {f"{kind}.reuse_detected" for kind in ("authorization_code", "refresh_token")}
    assert recorded - set(event_names.EVENTS) == set()
    assert {e.kind for e in event_names.EVENTS.values()} <= set(event_names.KINDS)


def test_names_of_events_and_actors(app):
    with app.test_request_context("/"), force_locale("en"):
        assert event_names.describe("login.password", "failure") == "Sign-in: wrong password"
        assert event_names.describe("login.password", "success") == "Sign-in: password"
        assert event_names.describe("email_code.failed", "success") == "E-mail code refused"  # the one name it has
        assert event_names.describe("something.new", "success") == "something.new"
        assert event_names.outcome_word("failure") == "Refused"
        assert event_names.actor_label("staff:help@example.com", "a1") == "help@example.com"
        assert event_names.actor_label("a1", "a1") == "The person themself"
        assert event_names.actor_label("a1", "a1", "failure") == "Someone using this account"
        assert event_names.actor_label("cli:root", None) == "Command line (root)"
        assert event_names.actor_label("anonymous", None) == "Someone not signed in"
        assert set(event_names.actions_of("support")) >= {"support.reset_2fa", "support.disable"}
