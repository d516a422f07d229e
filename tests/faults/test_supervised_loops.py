"""`idp serve` keeps its mail and prune loops alive: a killed loop is restarted at once and logged;
the loops end with the server."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from .conftest import children_of


def _child(server, command: str = "[idp-delivery]") -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        loops = [pid for pid, cmd in children_of(server.process.pid) if command in cmd]
        if loops:
            return loops[0]
        time.sleep(0.1)
    raise AssertionError(f"no {command!r} under idp serve (pid {server.process.pid}): {children_of(server.process.pid)}")


@pytest.mark.parametrize("server_kind", ["granian", "gunicorn"])
def test_a_killed_mail_loop_is_restarted_and_mail_still_arrives(serve, sink, server_kind):
    provider, server = serve(workers=1, server_kind=server_kind)
    before = provider.log_size()
    loop = _child(server)
    os.kill(loop, signal.SIGKILL)
    # gunicorn's arbiter reaps every child itself, so under it the signal is not known.
    death = ("SIGKILL",) if server_kind == "granian" else ("died",)
    provider.wait_for_log("delivery loop", str(loop), *death, since=before, timeout=5)

    address = f"new-{uuid.uuid4().hex[:8]}@example.com"
    provider.cli("invitations", "create", "--email", address, "--administration", "Bakkerij " + address[:12], "--json")
    mail = sink.wait_for_mail(address, timeout=8)
    assert provider.url in mail.text  # the invitation link
    assert _child(server) != loop


def test_a_killed_prune_loop_is_restarted(serve):
    provider, server = serve(workers=1)
    before = provider.log_size()
    pruner = _child(server, "[idp-prune]")
    os.kill(pruner, signal.SIGKILL)
    provider.wait_for_log("prune loop", str(pruner), "SIGKILL", since=before, timeout=5)
    provider.wait_for_log("prune loop restarted", since=before, timeout=5)
    assert _child(server, "[idp-prune]") != pruner


def test_several_workers_without_redis_say_that_limits_count_per_worker(serve):
    provider, _server = serve(workers=2)
    line = provider.wait_for_log("rate limits count per worker", timeout=5)
    assert "IDP_REDIS_URL" in line and "2 workers" in line


def test_one_worker_without_redis_says_nothing_about_limits(serve):
    provider, _server = serve(workers=1)
    provider.wait_for_log("idp serving on", timeout=5)
    with open(provider.log, "rb") as log:
        assert b"count per worker" not in log.read()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_loops_stop_when_the_server_is_killed(serve):
    """The loops are forked from the server: killed without a chance to stop them, it leaves none behind."""
    _provider, server = serve(workers=1)
    loops = [_child(server), _child(server, "[idp-prune]")]
    os.kill(server.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in loops) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in loops)
