"""`idp serve` keeps its delivery and prune loops alive as threads of one worker at a time: when
that worker is killed another takes them over at once and the log says so; the loops end with the
server, whether it is stopped or killed."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from .conftest import children_of, thread_names

# On SQLite (the fixture's database) the checkpoints run as a loop too.
LOOPS = ("idp-delivery", "idp-prune", "idp-checkpoint")


def _running(server, loop: str = "idp-delivery", timeout: float = 15) -> int:
    """The worker that runs ``loop`` (a thread of that name)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [pid for pid, _cmd in children_of(server.process.pid) if loop in thread_names(pid)]
        if workers:
            return workers[0]
        time.sleep(0.1)
    raise AssertionError(f"no worker of idp serve (pid {server.process.pid}) runs {loop!r}: "
                         f"{[(pid, thread_names(pid)) for pid, _cmd in children_of(server.process.pid)]}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_loops_run_as_named_threads_of_one_worker(serve):
    """No process of their own: `ps -L` shows them as threads of the worker whose turn it is."""
    _provider, server = serve(workers=2)
    runner = _running(server)
    assert _running(server, "idp-prune") == runner
    assert _running(server, "idp-checkpoint") == runner
    workers = children_of(server.process.pid)
    assert len(workers) == 2, workers
    others = [pid for pid, _cmd in workers if pid != runner]
    assert not any(loop in thread_names(pid) for pid in others for loop in LOOPS)


@pytest.mark.parametrize("server_kind", ["granian", "gunicorn"])
def test_the_loops_of_a_killed_worker_are_taken_over_and_mail_still_arrives(serve, sink, server_kind):
    provider, server = serve(workers=2, server_kind=server_kind)
    before = provider.log_size()
    victim = _running(server)
    os.kill(victim, signal.SIGKILL)
    line = provider.wait_for_log(f"worker pid {victim} died while running the delivery loop", since=before, timeout=10)
    assert "prune loop" in line and "checkpoint loop" in line

    address = f"new-{uuid.uuid4().hex[:8]}@example.com"
    provider.cli("invitations", "create", "--email", address, "--administration", "Bakkerij " + address[:12], "--json")
    mail = sink.wait_for_mail(address, timeout=8)
    assert provider.url in mail.text  # the invitation link
    runner = _running(server)
    assert runner != victim and _running(server, "idp-prune") == runner
    assert f"worker pid {runner} runs them now" in line


def test_several_workers_without_redis_say_that_limits_count_per_worker(serve):
    provider, _server = serve(workers=2)
    line = provider.wait_for_log("rate limits count per worker", timeout=5)
    assert "IDP_REDIS_URL" in line and "2 workers" in line


def test_one_worker_without_redis_says_nothing_about_limits(serve):
    provider, _server = serve(workers=1)
    provider.wait_for_log("idp serving on", timeout=5)
    with open(provider.log, "rb") as log:
        assert b"count per worker" not in log.read()


@pytest.mark.parametrize("server_kind", ["granian", "gunicorn"])
def test_the_loops_stop_when_the_server_is_killed(serve, server_kind):
    """Killed without a chance to stop anything, the server leaves no worker, and so no loop, behind
    (granian's workers would go on serving by themselves)."""
    provider, server = serve(workers=2, server_kind=server_kind)
    runner = _running(server)
    workers = [pid for pid, _cmd in children_of(server.process.pid)]
    os.kill(server.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
    if server_kind == "granian":
        provider.wait_for_log(f"the server (pid {server.process.pid}) is gone: worker pid {runner} stopping")


@pytest.mark.parametrize("server_kind", ["granian", "gunicorn"])
def test_sigterm_to_the_process_group_stops_everything_cleanly(serve, server_kind):
    """As a service manager stops it: every process gets SIGTERM at once. The loops end with their
    worker, no other worker takes them over on its way out, and nothing is left running."""
    provider, server = serve(workers=2, server_kind=server_kind)
    _running(server)
    processes = [server.process.pid, *(pid for pid, _cmd in children_of(server.process.pid))]
    before = provider.log_size()
    os.killpg(server.process.pid, signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in processes)
    with open(provider.log, "rb") as log:
        log.seek(before)
        after = log.read().decode(errors="replace")
    assert "runs the" not in after and "died" not in after and "Traceback" not in after, after
