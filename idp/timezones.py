"""Moments as people read them: in the time zone their browser tells, else the provider's.

The clock is naive UTC (clock.py). A small script on every page (static/timezone.js) puts the
browser's IANA zone in the cookie ``idp_tz``; pages show times in that zone without a label
(it is the person's own clock). Where the browser has not told it, and in mail (which the
person may read anywhere, and whose text must not depend on who caused it), times are in
the provider's zone (setting TIME_ZONE) with the zone's name beside them: never a bare UTC
time. Templates use the filters ``moment`` and ``day``; code uses ``shown``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import zoneinfo

from babel.dates import format_date, format_datetime, get_timezone_name
from flask import current_app, g, has_app_context, has_request_context, request

COOKIE = "idp_tz"
# IANA names: "Europe/Amsterdam", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "UTC".
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]{0,29}(/[A-Za-z0-9_+\-]{1,30}){0,2}")


@functools.lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_named(name) -> zoneinfo.ZoneInfo | None:
    """The zone of an IANA name the system knows, or None for anything else."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name not in _known():
        return None
    return zoneinfo.ZoneInfo(name)


def provider_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(current_app.config["TIME_ZONE"])


def _browser_zone() -> zoneinfo.ZoneInfo | None:
    if not has_request_context():
        return None
    if "browser_zone" not in g:
        g.browser_zone = zone_named(request.cookies.get(COOKIE))
    return g.browser_zone


def display_zone() -> tuple[zoneinfo.ZoneInfo, bool]:
    """(the zone to show times in, whether it needs its name beside the time)."""
    forced = g.get("forced_zone") if has_app_context() else None
    if forced is not None:
        return forced, True
    browser = _browser_zone()
    if browser is not None:
        return browser, False
    return provider_zone(), True


@contextlib.contextmanager
def shown_in(zone: zoneinfo.ZoneInfo):
    """Show times in ``zone``, with its name, whatever the browser said (mail)."""
    previous = g.get("forced_zone")
    g.forced_zone = zone
    try:
        yield
    finally:
        g.forced_zone = previous


def _locale() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale) if locale is not None else current_app.config["LANGUAGES"][0]


def shown(value: dt.datetime | None, *, seconds: bool = False) -> str:
    """A moment (naive UTC) as a person reads it: "23 nov. 2026 10:15", with the zone's
    name where it is not the browser's own ("... (Midden-Europese standaardtijd)")."""
    if value is None:
        return ""
    zone, named = display_zone()
    aware = value.replace(tzinfo=dt.timezone.utc).astimezone(zone)
    locale = _locale()
    text = format_datetime(aware, "d MMM y HH:mm:ss" if seconds else "d MMM y HH:mm", locale=locale)
    if named:
        text += f" ({get_timezone_name(aware, locale=locale)})"
    return text


def shown_day(value: dt.datetime | dt.date | None) -> str:
    """The day of a moment (naive UTC) in the person's zone: "23 nov. 2026"."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        zone, _ = display_zone()
        value = value.replace(tzinfo=dt.timezone.utc).astimezone(zone).date()
    return format_date(value, "d MMM y", locale=_locale())


def init_app(app) -> None:
    app.jinja_env.filters["moment"] = shown
    app.jinja_env.filters["day"] = shown_day
