"""Per-IP rate limits on the sign-in steps, in memory or in Redis."""

from __future__ import annotations

import os

import pytest

REDIS = os.environ.get("IDP_TEST_REDIS_URL", "")


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_IP="3 per minute", REDIS_URL=REDIS)
def test_login_steps_are_rate_limited_per_ip(app, browser, portal):
    if REDIS:
        assert app.config["RATELIMIT_STORAGE_URI"] == REDIS
    browser.authorize(portal["client_id"])
    for _ in range(3):
        browser.submit(email="not an address")
        assert browser.status == 400
    browser.submit(email="not an address")
    assert browser.status == 429 and browser.alert
    other = type(browser)(app)
    other.http.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    other.authorize(portal["client_id"])
    other.submit(email="not an address")
    assert other.status == 400


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ACCOUNT="3 per hour", REDIS_URL=REDIS)
def test_password_tries_are_limited_per_address_known_or_not(app, browser, portal, person):
    answers = []
    for email in (person["email"], "nobody@example.com"):
        b = type(browser)(app)
        b.authorize(portal["client_id"])
        b.submit(email=email)
        for _ in range(3):
            b.submit(password="wrong")
            assert b.status in (401, 423)
        b.submit(password="wrong")
        answers.append((b.status, b.alert))
        # another IP, same address: still limited
        c = type(browser)(app)
        c.http.environ_base["REMOTE_ADDR"] = "10.1.2.3"
        c.authorize(portal["client_id"])
        c.submit(email=email)
        c.submit(password="wrong")
        assert c.status == 429
    assert answers[0] == answers[1] and answers[0][0] == 429
