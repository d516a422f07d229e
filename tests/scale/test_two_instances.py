"""Two `idp serve` instances behind HAProxy (round robin, no stickiness) on PostgreSQL and Redis:
a whole first login and a login walk across both, and a rate limit counts once for both.

Runs in the normal suite when IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL are set; it uses
its own database (the test database's name + ``_lb``) and the Redis database after the test one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pyotp
import pytest
import requests

from tests.helpers import parse
from tests.smtp_sink import Sink, free_port, text_of

TEST_DB = os.environ.get("IDP_TEST_DATABASE_URL")
TEST_REDIS = os.environ.get("IDP_TEST_REDIS_URL")
HAPROXY = "/usr/sbin/haproxy"
REDIRECT_URI = "http://app.test/callback"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not (TEST_DB and TEST_REDIS), reason="needs IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL")

HAPROXY_CONFIG = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-server-close
    option forwardfor
frontend idp
    bind 127.0.0.1:{lb_port}
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    server a 127.0.0.1:{port_a} check inter 2s
    server b 127.0.0.1:{port_b} check inter 2s
"""


def _lb_database(url: str) -> str:
    """Create (or empty) the test database's ``_lb`` sibling; returns its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_lb"
    libpq = base.set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(libpq.set(database=name).render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def _next_redis_database(url: str) -> str:
    # The functional tests reset the limiter in the test database while this one counts.
    parts = urlsplit(url)
    index = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(index + 1) % 16}").geturl()


class Process:
    def __init__(self, args, env, log: Path):
        self.log = log
        self._file = open(log, "wb")
        self.popen = subprocess.Popen(args, env=env, cwd=REPO, stdout=self._file, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    def stop(self):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # the mail and prune loops share the group
        except (ProcessLookupError, PermissionError):
            pass
        self._file.close()

    def request_ids(self) -> set[str]:
        ids = set()
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("logger") == "idp.request" and entry.get("request_id"):
                    ids.add(entry["request_id"])
        return ids


def _wait_for(url: str, process: Process | None = None, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.popen.poll() is not None:
            raise AssertionError(f"{process.log.name} exited:\n{process.log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lb")
    sink = Sink().start()
    lb_port, port_a, port_b = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{lb_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        IDP_ENV="production",
        IDP_ISSUER=issuer,
        IDP_INSTANCE_PATH=str(tmp / "instance"),
        IDP_SECRET_KEY=secrets.token_hex(32),
        IDP_DATABASE_URL=_lb_database(TEST_DB),
        IDP_REDIS_URL=_next_redis_database(TEST_REDIS),
        IDP_MAIL_SERVER="127.0.0.1",
        IDP_MAIL_PORT=str(sink.port),
        IDP_TRUSTED_PROXIES="1",
        IDP_LOG_FORMAT="json",
        IDP_RATELIMIT_LOGIN_PER_IP="300 per minute",
        IDP_RATELIMIT_LOGIN_PER_ACCOUNT="3 per hour",
    )
    idp = [sys.executable, "-m", "idp.cli"]
    upgrade = subprocess.run([*idp, "db", "upgrade"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    processes = {}
    try:
        for name, port in (("a", port_a), ("b", port_b)):
            processes[name] = Process([*idp, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                      env, tmp / f"idp-{name}.log")
        for name, port in (("a", port_a), ("b", port_b)):
            _wait_for(f"http://127.0.0.1:{port}/readyz", processes[name])
        config = tmp / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(lb_port=lb_port, port_a=port_a, port_b=port_b))
        processes["haproxy"] = Process([HAPROXY, "-db", "-f", str(config)], env, tmp / "haproxy.log")
        _wait_for(issuer + "/healthz", processes["haproxy"])

        def cli(*args):
            result = subprocess.run([*idp, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        yield {"url": issuer, "a": processes["a"], "b": processes["b"], "sink": sink, "cli": cli}
    finally:
        for process in processes.values():
            process.stop()
        sink.stop()


class Person:
    """A browser through the balancer: every request carries its own X-Request-Id."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.sent_ids: list[str] = []
        self.page = None
        self.url = None
        self.location = None

    def go(self, method: str, url: str, data=None):
        url = urljoin(self.base, url)
        while True:
            rid = uuid.uuid4().hex
            self.sent_ids.append(rid)
            response = self.http.request(method, url, data=data, allow_redirects=False, timeout=30,
                                         headers={"X-Request-Id": rid})
            assert response.headers["X-Request-Id"] == rid
            location = response.headers.get("Location")
            if response.status_code in (302, 303) and location and urljoin(url, location).startswith(self.base):
                url, method, data = urljoin(url, location), "GET", None
                continue
            self.status, self.location, self.url = response.status_code, location, url
            self.page = parse(response.text) if response.headers.get("Content-Type", "").startswith("text/html") else None
            return response

    @property
    def state(self):
        form = self.page.forms.get("step") if self.page else None
        return form["fields"].get("state") if form else None

    def submit(self, **fields):
        form = self.page.forms["step"]
        return self.go("POST", form["action"] or self.url, {**form["fields"], **fields})

    def authorize(self, client_id: str):
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        self.verifier = verifier
        query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
                 "scope": "openid email", "state": secrets.token_hex(4), "nonce": secrets.token_hex(4),
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        return self.go("GET", "/authorize?" + urlencode(query))

    def code(self) -> str:
        assert self.location and self.location.startswith(REDIRECT_URI), (self.status, self.location)
        return parse_qs(urlsplit(self.location).query)["code"][0]


def served_by(cluster, ids) -> set[str]:
    """Which instances logged these request ids (each exactly one of them)."""
    seen = {name: cluster[name].request_ids() for name in ("a", "b")}
    for rid in ids:
        assert (rid in seen["a"]) != (rid in seen["b"]), f"request {rid} logged by {'both' if rid in seen['a'] else 'none'}"
    return {name for name in ("a", "b") if seen[name] & set(ids)}


def _wait_logged(cluster, ids, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        seen = cluster["a"].request_ids() | cluster["b"].request_ids()
        if set(ids) <= seen or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def test_a_first_login_and_a_login_walk_across_both_instances(cluster):
    client = cluster["cli"]("clients", "create", "--name", "Portal", "--first-party", "--redirect-uri", REDIRECT_URI,
                            "--json")
    email = f"anna-{secrets.token_hex(3)}@example.com"
    password = "correct horse battery staple"
    cluster["cli"]("users", "create", "--email", email, "--password", password, "--json")

    first = Person(cluster["url"])
    first.authorize(client["client_id"])
    flow_start = len(first.sent_ids)
    first.submit(email=email)
    assert first.state == "password", first.status
    first.submit(password=password)
    assert first.state == "verify_email", first.status
    first.submit(email=email)
    mail_text = text_of(cluster["sink"].wait_for(email, timeout=20)[-1])
    code = next(word for word in mail_text.split() if word.isdigit() and len(word) == 6)
    first.submit(email_code=code)
    assert first.state == "totp_enroll", first.status
    secret = first.page.ids["totp-secret"].replace(" ", "").strip()
    totp = pyotp.TOTP(secret)
    first.submit(totp_code=totp.now())
    authorization_code = first.code()
    flow_ids = first.sent_ids[flow_start:]

    tokens = requests.post(cluster["url"] + "/token", auth=(client["client_id"], client["client_secret"]), timeout=30,
                           data={"grant_type": "authorization_code", "code": authorization_code,
                                 "redirect_uri": REDIRECT_URI, "code_verifier": first.verifier})
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"]

    again = Person(cluster["url"])
    again.authorize(client["client_id"])
    again.submit(email=email)
    again.submit(password=password)
    assert again.state == "totp", again.status
    again.submit(totp_code=totp.at(time.time() + 30))  # the enrolment used this window's code
    assert again.code()

    _wait_logged(cluster, first.sent_ids + again.sent_ids)
    # One flow's steps were answered by both instances: it started on one and finished on the other.
    assert served_by(cluster, flow_ids) == {"a", "b"}
    assert served_by(cluster, again.sent_ids) == {"a", "b"}


def test_a_rate_limit_counts_once_across_both_instances(cluster):
    email = f"nobody-{secrets.token_hex(3)}@example.com"  # 3 password tries per hour per address
    person = Person(cluster["url"])
    person.authorize(cluster["cli"]("clients", "create", "--name", "Other", "--first-party", "--redirect-uri",
                                    REDIRECT_URI, "--json")["client_id"])
    person.submit(email=email)
    tries = []
    for _ in range(3):
        person.submit(password="wrong")
        assert person.status == 401, person.status
        tries.append(person.sent_ids[-1])
    person.submit(password="wrong")
    assert person.status == 429
    tries.append(person.sent_ids[-1])
    _wait_logged(cluster, tries)
    assert served_by(cluster, tries) == {"a", "b"}


def test_the_instances_prune_and_log_json(cluster):
    def pruned_lines():
        lines = []
        for name in ("a", "b"):
            for line in cluster[name].log.read_text(errors="replace").splitlines():
                if line.startswith("{") and "pruned" in (entry := json.loads(line)):
                    lines.append(entry)
        return lines

    deadline = time.monotonic() + 20
    while not pruned_lines():
        assert time.monotonic() < deadline, "no instance logged a prune round"
        time.sleep(0.5)
    assert set(pruned_lines()[0]["pruned"]) >= {"flows", "sessions", "tokens", "authorization_codes"}
