"""Two `idp serve` instances behind HAProxy (round robin, no stickiness; the haproxy.cfg of
README.md) on PostgreSQL and Redis: a whole first login and a login walk whose steps alternate
between them, a rate limit counts once for both, and 50
redemptions of one code (or one refresh token) racing through both leave exactly one winner and
its family revoked.

Runs in the normal suite when IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL are set; it uses
its own database (the test database's name + ``_lb``) and the Redis database after the test one.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
import requests

from tests.helpers import at_once
from tests.live import (REDIRECT_URI, Provider, Server, Visitor, first_login, fresh_postgres, free_port, provider_env,
                        run_idp, serve)
from tests.smtp_sink import Mailbox

TEST_DB = os.environ.get("IDP_TEST_DATABASE_URL")
TEST_REDIS = os.environ.get("IDP_TEST_REDIS_URL")
HAPROXY = "/usr/sbin/haproxy"

pytestmark = pytest.mark.skipif(not (TEST_DB and TEST_REDIS), reason="needs IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL")

README = Path(__file__).resolve().parents[2] / "README.md"


def haproxy_config(lb_port: int, port_a: int, port_b: int) -> str:
    """The haproxy.cfg that README.md shows for two instances, with this test's ports: the test runs
    what the operators are told to run, and a change to the one is a change to the other."""
    lines = README.read_text().splitlines()
    start = lines.index("# haproxy.cfg (TLS left out; terminate it here with `bind :443 ssl crt ...` and")
    assert lines[start - 1] == "```", "the haproxy.cfg in README.md is no longer a code block of its own"
    config = "\n".join(lines[start:lines.index("```", start)]) + "\n"
    for shown, used in (("    bind :8000\n", f"    bind 127.0.0.1:{lb_port}\n"),
                        (" 127.0.0.1:8001 ", f" 127.0.0.1:{port_a} "), (" 127.0.0.1:8002 ", f" 127.0.0.1:{port_b} ")):
        assert config.count(shown) == 1, f"README.md's haproxy.cfg no longer has {shown.strip()!r} once"
        config = config.replace(shown, used)
    return config


def _next_redis_database(url: str) -> str:
    # The functional tests reset the limiter in the test database while this one counts.
    parts = urlsplit(url)
    index = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(index + 1) % 16}").geturl()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lb")
    mailbox = Mailbox()
    mailbox.start_relay(free_port())
    lb_port, port_a, port_b = free_port(), free_port(), free_port()
    issuer = f"http://127.0.0.1:{lb_port}"
    env = provider_env(issuer, database_url=fresh_postgres(TEST_DB, "_lb"), instance=tmp / "instance",
                       mail_port=mailbox.port, REDIS_URL=_next_redis_database(TEST_REDIS), TRUSTED_PROXIES=1,
                       LOG_FORMAT="json", RATELIMIT_LOGIN_PER_IP="300 per minute",
                       RATELIMIT_LOGIN_PER_ACCOUNT="3 per hour")
    run_idp(env, "db", "upgrade")
    servers = {}
    try:
        for name, port in (("a", port_a), ("b", port_b)):
            servers[name] = serve(env, port, tmp / f"idp-{name}.log", workers=1, ready_path="/readyz")
        config = tmp / "haproxy.cfg"
        config.write_text(haproxy_config(lb_port, port_a, port_b))
        servers["haproxy"] = Server("haproxy", [HAPROXY, "-db", "-f", str(config)], env, tmp / "haproxy.log")
        servers["haproxy"].wait_until_up(issuer + "/healthz")
        yield {"url": issuer, "a": servers["a"], "b": servers["b"], "mailbox": mailbox,
               "provider": Provider(url=issuer, env=env, log=servers["a"].log)}
    finally:
        for server in servers.values():
            server.stop()
        mailbox.stop_relay()


def request_ids(log: Path) -> set[str]:
    """The request ids an instance logged (JSON lines)."""
    ids = set()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "idp.request" and entry.get("request_id"):
                ids.add(entry["request_id"])
    return ids


def servers_of(cluster, ids) -> list[str]:
    """The instance that logged each of these request ids, in their order (each exactly one of them)."""
    _wait_logged(cluster, ids)
    seen = {name: request_ids(cluster[name].log) for name in ("a", "b")}
    for rid in ids:
        assert (rid in seen["a"]) != (rid in seen["b"]), f"request {rid} logged by {'both' if rid in seen['a'] else 'none'}"
    return ["a" if rid in seen["a"] else "b" for rid in ids]


def served_by(cluster, ids) -> set[str]:
    """Which instances logged these request ids."""
    return set(servers_of(cluster, ids))


def assert_alternated(cluster, ids) -> None:
    """Requests sent one after another through the balancer, and nothing else meanwhile, went to
    the instances in turn: round robin, no stickiness (a cookie or the connection would keep one)."""
    servers = servers_of(cluster, ids)
    assert len(ids) >= 4 and all(this != after for this, after in zip(servers, servers[1:])), servers


def _wait_logged(cluster, ids, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        seen = request_ids(cluster["a"].log) | request_ids(cluster["b"].log)
        if set(ids) <= seen or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _client(cluster, name: str) -> dict:
    return cluster["provider"].cli_json("clients", "create", "--name", name, "--first-party", "--redirect-uri",
                                        REDIRECT_URI, "--json")


def _first_login(cluster, client: dict, scope: str = "openid email") -> tuple[Visitor, pyotp.TOTP, list[str]]:
    """A new account's first sign-in through the balancer (``live.first_login``)."""
    return first_login(cluster["provider"], cluster["url"], cluster["mailbox"], client, scope)


def test_a_first_login_and_a_login_walk_across_both_instances(cluster):
    client = _client(cluster, "Portal")
    first, totp, flow_ids = _first_login(cluster, client)
    tokens = first.exchange(client)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["id_token"]

    again = Visitor(cluster["url"])
    again.authorize(client["client_id"])
    again.submit(email=first.email)
    again.submit(password=first.password)
    assert again.state == "totp", again.status
    again.submit(totp_code=totp.at(time.time() + 30))  # the enrolment used this window's code
    assert again.code()

    # Each flow's steps, and the redirects between them, were answered by the instances in turn.
    assert_alternated(cluster, flow_ids)
    assert_alternated(cluster, again.sent_ids)


def test_a_rate_limit_counts_once_across_both_instances(cluster):
    email = f"nobody-{secrets.token_hex(3)}@example.com"  # 3 password tries per hour per address
    person = Visitor(cluster["url"])
    person.authorize(_client(cluster, "Other")["client_id"])
    person.submit(email=email)
    tries = []
    for _ in range(3):
        person.submit(password="wrong")
        assert person.status == 401, person.status
        tries.append(person.sent_ids[-1])
    person.submit(password="wrong")
    assert person.status == 429
    tries.append(person.sent_ids[-1])
    assert_alternated(cluster, tries)


def _race(cluster, client: dict, data: dict, n: int = 50) -> tuple[list[requests.Response], list[str]]:
    """``n`` token requests with the same body, released at once through the balancer."""
    def post():
        rid = uuid.uuid4().hex
        return rid, requests.post(cluster["url"] + "/token", data=data, headers={"X-Request-Id": rid}, timeout=60,
                                  auth=(client["client_id"], client["client_secret"]))

    sent = at_once(n, post)
    return [response for _rid, response in sent], [rid for rid, _response in sent]


def _one_winner_and_its_family_revoked(cluster, client, responses, ids):
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and statuses.count(400) == len(responses) - 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    assert served_by(cluster, ids) == {"a", "b"}
    winner = next(r.json() for r in responses if r.status_code == 200)
    introspected = requests.post(cluster["url"] + "/introspect", data={"token": winner["access_token"]}, timeout=30,
                                 auth=(client["client_id"], client["client_secret"]))
    assert introspected.json() == {"active": False}
    if "refresh_token" in winner:
        again = requests.post(cluster["url"] + "/token", timeout=30,
                              data={"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]},
                              auth=(client["client_id"], client["client_secret"]))
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_fifty_redemptions_of_one_code_across_both_instances(cluster):
    client = _client(cluster, "Racing portal")
    person, _totp, _ids = _first_login(cluster, client)
    responses, ids = _race(cluster, client, {"grant_type": "authorization_code", "code": person.code(),
                                             "redirect_uri": REDIRECT_URI, "code_verifier": person.verifier})
    _one_winner_and_its_family_revoked(cluster, client, responses, ids)


def test_fifty_refreshes_of_one_refresh_token_across_both_instances(cluster):
    client = _client(cluster, "Refreshing portal")
    person, _totp, _ids = _first_login(cluster, client, scope="openid email offline_access")
    tokens = person.exchange(client).json()
    responses, ids = _race(cluster, client, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    _one_winner_and_its_family_revoked(cluster, client, responses, ids)


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
