"""`make run` (scripts/demo.py): the demo data, the portal's addresses for the ports of a run,
and a port that is taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from idp import clock
from idp.extensions import db
from idp.models import Client
from tests.helpers import T0, load_script

ROOT = Path(__file__).resolve().parents[2]


def load_demo():
    return load_script(ROOT / "scripts" / "demo.py", "demo_script")


def test_the_demo_data_shows_client_management_at_once(app, cli, browser, tmp_path):
    demo = load_demo()

    def run(*args):
        result = cli.invoke(args=list(args))
        assert result.exit_code == 0, (args, result.output)
        return result.output

    def in_app(work):
        with app.app_context():
            work()
            db.session.commit()

    state = demo.setup(run, in_app, tmp_path / "demo.json")
    text = demo.banner(state)
    for person in state["people"].values():
        assert person["email"] in text and person["password"] in text
    assert "Client management" in text and "IDP_ENV=development" in text

    # The accountant's first sign-in ends on the account page with the firm's Client management.
    accountant = state["people"]["accountant"]
    clock.freeze(T0)
    browser.get("/account")
    browser.sign_in(accountant["email"], accountant["password"], first_time=True)
    browser.get("/account")
    assert "client-management-1" in browser.page.ids
    assert "Demo Accountants" in browser.page.ids["client-management-1"]
    browser.get(browser.page.links["client-management-1"])
    assert browser.status == 200 and "invite" in browser.page.forms

    # Another run on other ports registers the portal's addresses for them; nothing is made twice.
    demo.PORTAL = "http://127.0.0.1:5101"
    assert demo.setup(run, in_app, tmp_path / "demo.json") == state
    with app.app_context():
        client = db.session.get(Client, state["client"]["client_id"])
        assert client.redirect_uris == ["http://127.0.0.1:5101/callback"]
        assert client.post_logout_redirect_uris == ["http://127.0.0.1:5101/"]
        assert client.display_name("nl") == "Boekhoudportaal"


def test_make_run_with_a_port_taken_stops_at_once_and_says_why(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PORTAL_"))}
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=tmp_path, timeout=30,
                                env={**env, "IDP_PORT": str(port), "PORTAL_PORT": str(port + 1 if port < 65535 else 1)},
                                capture_output=True, text=True)
    assert result.returncode != 0
    assert f"port {port} (IDP_PORT)" in result.stderr and "IDP_PORT=5100" in result.stderr, result.stderr
    assert "Provider" not in result.stdout  # no banner
    assert time.monotonic() - started < 10
