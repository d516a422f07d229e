"""Back-channel logout through the outbox: the person's logout never waits for a relying
party, and a relying party that is down, hangs or comes back gets each logout exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from idp import clock

from ..helpers import POST_LOGOUT_URI, T0, Browser, cli_runner, decode, exchange_code, make_client, sample

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RelyingParty:
    """A relying app's back-channel logout endpoint that can be down, hang or answer."""

    def __init__(self):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}/backchannel-logout"
        self.accepted: list[str] = []  # logout tokens answered with 200
        self.delay = 0.0
        self.release = threading.Event()  # set: a hanging endpoint answers
        self.release.set()
        self.server = None
        self.together = 0  # this many first requests wait until they are all in (two loops at once)
        self._arrived = 0
        self._all_in = threading.Event()
        self._lock = threading.Lock()

    def _meet(self):
        with self._lock:
            self._arrived += 1
            waits = self._arrived <= self.together
            if self._arrived >= self.together:
                self._all_in.set()
        if waits:
            self._all_in.wait(15)

    def up(self):
        rp = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                rp.release.wait(30)
                rp._meet()
                time.sleep(rp.delay)
                rp.accepted.append(parse_qs(body)["logout_token"][0])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def down(self):
        if self.server is not None:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def rp(app):
    party = RelyingParty()
    yield party
    party.down()


@pytest.fixture
def rp_client(app, rp):
    return make_client(app, name="RP", extra=["--backchannel-logout-uri", rp.uri])


def signed_in(app, client, person, browser=None, *, first_time=True, secret=None):
    """A browser signed in to ``client``; returns it and the session's sid."""
    browser = browser or Browser(app)
    browser.totp_secret = secret
    browser.authorize(client["client_id"])
    browser.sign_in(person["email"], person["password"], first_time=first_time)
    body = exchange_code(browser.http, client, browser.callback_params()["code"], browser.verifier).get_json()
    browser.id_token = body["id_token"]
    return browser, decode(browser.http, body["id_token"]).claims["sid"]


def log_out(browser):
    browser.get(f"/logout?id_token_hint={browser.id_token}&post_logout_redirect_uri={POST_LOGOUT_URI}")
    assert browser.location == POST_LOGOUT_URI  # an ID token of this session: no question


def delivery_round(app) -> str:
    result = cli_runner(app).invoke(args=["mail", "deliver"])
    assert result.exit_code == 0, result.output
    return result.output


def claims_of(app, tokens):
    return [decode(app.test_client(), t).claims for t in tokens]


def test_a_logout_while_the_relying_party_is_down_reaches_it_once_it_is_back(app, rp, rp_client, person):
    clock.freeze(T0)
    browser, sid = signed_in(app, rp_client, person)
    log_out(browser)
    assert "back-channel logouts: delivered 0, failed 1" in delivery_round(app)

    rp.up()
    clock.advance(seconds=2)
    delivery_round(app)  # the retry is not due yet
    assert rp.accepted == []
    clock.advance(seconds=5)
    assert "back-channel logouts: delivered 1, failed 0" in delivery_round(app)
    clock.advance(hours=3)
    delivery_round(app)
    (claims,) = claims_of(app, rp.accepted)
    assert claims["sid"] == sid and claims["sub"] == person["sub"] and claims["aud"] == rp_client["client_id"]
    assert EVENT in claims["events"]
    # Made when delivered, so a retry is never an expired token.
    assert claims["iat"] == int(clock.timestamp() - 3 * 3600) and claims["exp"] > claims["iat"]


def test_queued_logouts_show_in_metrics_beside_the_mail_outbox(app, rp, rp_client, person):
    http = app.test_client()
    clock.freeze(T0)
    browser, _sid = signed_in(app, rp_client, person)
    assert sample(http, "idp_backchannel_queued") == 0
    log_out(browser)
    clock.advance(seconds=90)
    assert sample(http, "idp_backchannel_queued") == 1
    assert sample(http, "idp_backchannel_oldest_due_seconds") == 90
    rp.up()
    delivery_round(app)
    assert sample(http, "idp_backchannel_queued") == 0 and sample(http, "idp_backchannel_oldest_due_seconds") == 0


@pytest.mark.config(BACKCHANNEL_TIMEOUT=1)
def test_the_logout_answers_at_once_when_the_relying_party_hangs(app, rp, rp_client, person):
    clock.freeze(T0)
    browser, sid = signed_in(app, rp_client, person)
    rp.release.clear()
    rp.up()
    started = time.monotonic()
    log_out(browser)
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    assert "delivered 0, failed 1" in delivery_round(app)  # the loop gives up after IDP_BACKCHANNEL_TIMEOUT
    assert time.monotonic() - started < 5
    rp.release.set()
    clock.advance(seconds=10)
    assert "delivered 1, failed 0" in delivery_round(app)
    assert [c["sid"] for c in claims_of(app, rp.accepted)][-1] == sid


@pytest.mark.config(BACKCHANNEL_MAX_ATTEMPTS=2)
def test_a_logout_is_abandoned_after_the_last_try_and_counted(app, rp, rp_client, person):
    client = app.test_client()
    before = sample(client, "idp_backchannel_deliveries_total", outcome="abandoned")
    clock.freeze(T0)
    browser, _ = signed_in(app, rp_client, person)
    log_out(browser)
    delivery_round(app)
    clock.advance(seconds=10)
    assert "delivered 0, failed 1" in delivery_round(app)
    assert sample(client, "idp_backchannel_deliveries_total", outcome="abandoned") == before + 1
    rp.up()
    clock.advance(hours=5)
    assert "back-channel" not in delivery_round(app)
    assert rp.accepted == []


def test_support_disabling_an_account_owes_every_session_one_logout_and_two_loops_send_each_once(
        app, rp, rp_client, person, tmp_path):
    clock.freeze(T0)
    first, sid1 = signed_in(app, rp_client, person)
    clock.advance(minutes=1)
    _, sid2 = signed_in(app, rp_client, person, first_time=False, secret=first.totp_secret)
    clock.advance(minutes=1)
    _, sid3 = signed_in(app, rp_client, person, first_time=False, secret=first.totp_secret)
    result = cli_runner(app).invoke(args=["support", "disable", person["email"], "--reason", "stolen laptop"])
    assert result.exit_code == 0, result.output
    assert rp.accepted == []

    rp.together = 2  # the first two logouts are answered only once both loops are sending one
    rp.up()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({"IDP_INSTANCE_PATH": str(tmp_path / "cli"), "IDP_ENV": "development", "IDP_ISSUER": app.config["ISSUER"],
                "IDP_DATABASE_URL": app.config["DATABASE_URL"], "IDP_SECRET_KEY": app.config["SECRET_KEY"],
                "IDP_BACKCHANNEL_TIMEOUT": "20"})
    loops = [subprocess.Popen([sys.executable, "-m", "idp.cli", "mail", "deliver"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [loop.communicate(timeout=60) for loop in loops]
    assert all(loop.returncode == 0 for loop in loops), outputs
    assert all("back-channel logouts: delivered" in out for out, _ in outputs)  # both loops took part
    assert sorted(c["sid"] for c in claims_of(app, rp.accepted)) == sorted([sid1, sid2, sid3])


def test_a_new_sign_in_in_the_same_browser_logs_the_previous_session_out_at_the_relying_party(
        app, rp, rp_client, person):
    clock.freeze(T0)
    browser, previous = signed_in(app, rp_client, person)
    rp.up()
    clock.advance(minutes=1)
    browser.authorize(rp_client["client_id"], prompt="login")
    browser.sign_in(person["email"], person["password"])
    current = decode(browser.http, exchange_code(browser.http, rp_client, browser.callback_params()["code"],
                                                 browser.verifier).get_json()["id_token"]).claims["sid"]
    assert rp.accepted == []
    delivery_round(app)
    assert [c["sid"] for c in claims_of(app, rp.accepted)] == [previous] and current != previous


def test_a_password_change_logs_the_other_sessions_out_at_the_relying_party(app, rp, rp_client, person):
    clock.freeze(T0)
    laptop, laptop_sid = signed_in(app, rp_client, person)
    clock.advance(minutes=1)
    phone, phone_sid = signed_in(app, rp_client, person, first_time=False, secret=laptop.totp_secret)
    rp.up()
    clock.advance(minutes=1)
    phone.get("/account")
    new_password = "Winter-boot-77-Haring"
    phone.submit("password-form", current_password=person["password"], password=new_password,
                 password_confirm=new_password, totp_code=phone.next_totp())
    assert phone.url.startswith("/account") and phone.status == 200
    delivery_round(app)
    assert [c["sid"] for c in claims_of(app, rp.accepted)] == [laptop_sid] and phone_sid != laptop_sid
