"""The CAPTCHA widget in a real browser, under the provider's Content-Security-Policy.

A small Flask app (not the provider) renders templates/_captcha.html in a form, serves
static/ and answers the widget's challenge request with ``captcha.new_challenge()``
of a provider app; the posted solution goes through ``captcha.verify()``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from pathlib import Path

import pytest
from flask import Flask, g, jsonify, render_template_string, request
from playwright.sync_api import expect
from werkzeug.serving import make_server

from idp import clock
from idp.extensions import db
from idp.services import captcha
from idp.web.headers import security_headers

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 30_000

PAGE = """<!doctype html>
<html lang="{{ lang }}">
<head><meta charset="utf-8"><title>captcha</title>
<link rel="stylesheet" href="{{ url_for('static', filename='style.css') }}"></head>
<body><main class="card">
{% from "_captcha.html" import captcha_field %}
<form id="step" method="post" action="{{ url_for('submit') }}" novalidate>
  <label for="username">Username</label>
  <input id="username" name="username" type="text">
  {{ captcha_field(url_for('challenge', lifetime=lifetime)) }}
  <button type="submit" class="primary">Next</button>
</form>
</main></body></html>"""


def make_site(idp_app) -> Flask:
    site = Flask(
        "captcha_site",
        static_folder=str(REPO / "static"),
        template_folder=str(REPO / "templates"),
    )
    site.config["ISSUER"] = "http://127.0.0.1"
    site.jinja_env.globals["_"] = lambda text, **values: text % values if values else text
    site.jinja_env.autoescape = True
    site.submitted = []

    @site.before_request
    def _nonce():
        g.csp_nonce = secrets.token_urlsafe(16)

    site.after_request(security_headers)

    @site.get("/")
    def form():
        return render_template_string(PAGE, lang=request.args.get("lang", "nl"), lifetime=request.args.get("lifetime"))

    @site.get("/challenge")
    def challenge():
        with idp_app.app_context():
            lifetime = request.args.get("lifetime", type=int)
            if lifetime:  # a challenge issued long enough ago that `lifetime` seconds remain
                clock.freeze(clock.now() - dt.timedelta(seconds=idp_app.config["CAPTCHA_LIFETIME"] - lifetime))
            try:
                return jsonify(captcha.new_challenge())
            finally:
                clock.freeze(None)

    @site.post("/submit")
    def submit():
        payload = request.form.get("altcha", "")
        with idp_app.app_context():
            accepted = captcha.verify(payload)
            db.session.commit()
        site.submitted.append(payload)
        return render_template_string('<p id="result">{{ result }}</p>', result="accepted" if accepted else "refused")

    return site


@pytest.fixture
def site(app):
    server = make_server("127.0.0.1", 0, make_site(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def chromium(browser):
    """The session's Chromium (conftest.py): one process may run only one Playwright
    sync API at a time, so this module does not start a second one."""
    return browser


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.problems = []  # CSP violations, script errors and warnings (not the missing favicon)

    def on_console(message):
        if message.type in ("error", "warning") and "favicon" not in message.text and "404" not in message.text:
            page.problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    yield page
    context.close()


def submit_button(page):
    return page.locator("#step button[type=submit]")


def test_widget_solves_under_csp_and_server_accepts_once(site, page):
    flask_site, base = site
    response = page.goto(f"{base}/?lang=nl")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "style-src 'self';" in csp
    expect(page.locator("#captcha")).to_contain_text("Ik ben geen robot")
    expect(submit_button(page)).to_be_disabled()

    started = time.monotonic()
    page.click("#captcha")
    expect(submit_button(page)).to_be_enabled(timeout=TIMEOUT_MS)
    elapsed = time.monotonic() - started
    solved_in = page.evaluate("JSON.parse(atob(document.querySelector('input[name=altcha]').value)).solution.time")
    print(f"\ncaptcha at the default complexity: solved in {solved_in:.0f} ms, button enabled after {elapsed:.2f} s")
    assert page.evaluate("document.getElementById('captcha').getState()") == "verified"

    page.fill("#username", "U4BBGA0008")
    submit_button(page).click()
    expect(page.locator("#result")).to_have_text("accepted")
    assert page.problems == []

    # The same solution a second time is refused.
    payload = flask_site.submitted[-1]
    replay = page.request.post(f"{base}/submit", form={"altcha": payload})
    assert 'id="result">refused<' in replay.text()


@pytest.mark.config(CAPTCHA_MAX_NUMBER=200)
def test_button_is_disabled_again_when_the_challenge_expires(site, page):
    _, base = site
    page.goto(f"{base}/?lang=en&lifetime=6")
    expect(page.locator("#captcha")).to_contain_text("not a robot")
    expect(submit_button(page)).to_be_disabled()
    page.click("#captcha")
    expect(submit_button(page)).to_be_enabled()
    # The widget expires the solution with its challenge and the button follows.
    expect(submit_button(page)).to_be_disabled(timeout=15_000)
    assert page.evaluate("document.getElementById('captcha').getState()") == "expired"
    # A click on the box fetches a new challenge.
    page.click("#captcha")
    expect(submit_button(page)).to_be_enabled()
    submit_button(page).click()
    expect(page.locator("#result")).to_have_text("accepted")
    assert page.problems == []
