"""IDP_TRUSTED_PROXIES: whose address the audit trail and the per-IP limits see."""

from __future__ import annotations

import json

import pytest


def last_audit_ip(cli, email: str) -> str:
    result = cli.invoke(args=["audit", "list", "--subject", email, "--limit", "1", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)[0]["ip"]


def wrong_password(browser, portal, email: str) -> None:
    browser.authorize(portal["client_id"])
    browser.submit(email=email)
    browser.submit(password="not the password")
    assert browser.status in (401, 423), browser.status


def test_forwarded_headers_are_ignored_by_default(app, browser, portal, person, cli):
    browser.http.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1")
    wrong_password(browser, portal, person["email"])
    assert last_audit_ip(cli, person["email"]) == "10.0.0.5"


@pytest.mark.config(TRUSTED_PROXIES=1)
def test_the_client_behind_a_trusted_proxy_is_in_the_audit_trail(app, browser, portal, person, cli):
    browser.http.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1")
    wrong_password(browser, portal, person["email"])
    assert last_audit_ip(cli, person["email"]) == "198.51.100.1"


@pytest.mark.config(TRUSTED_PROXIES=1)
def test_only_as_many_hops_as_trusted_are_believed(app, browser, portal, person, cli):
    # The client put a made-up address in front; the proxy appended what it saw.
    browser.http.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="192.0.2.66, 198.51.100.1")
    wrong_password(browser, portal, person["email"])
    assert last_audit_ip(cli, person["email"]) == "198.51.100.1"


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_IP="3 per minute")
def test_a_spoofed_forwarded_for_does_not_escape_the_per_ip_limit(app, browser, portal):
    browser.authorize(portal["client_id"])
    for n in range(3):
        browser.http.environ_base["HTTP_X_FORWARDED_FOR"] = f"198.51.100.{n + 1}"
        browser.submit(email="not an address")
        assert browser.status == 400
    browser.http.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.99"
    browser.submit(email="not an address")
    assert browser.status == 429


@pytest.mark.config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_IP="3 per minute", TRUSTED_PROXIES=1)
def test_behind_a_trusted_proxy_each_client_has_its_own_limit(app, browser, portal):
    browser.http.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.1")
    browser.authorize(portal["client_id"])
    for _ in range(3):
        browser.submit(email="not an address")
        assert browser.status == 400
    browser.submit(email="not an address")
    assert browser.status == 429
    other = type(browser)(app)
    other.http.environ_base.update(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.2")
    other.authorize(portal["client_id"])
    other.submit(email="not an address")
    assert other.status == 400
