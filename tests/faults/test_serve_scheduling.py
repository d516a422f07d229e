"""`idp serve` runs its workers under the kernel's batch scheduling policy unless told
`--scheduling normal`: every thread of every worker, whichever WSGI server, and it answers
under either."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.live import idp_command, provider_env

from .conftest import children_of, client_credentials


def policies_of_workers(master: int) -> dict[int, set[int]]:
    """Each worker's pid and the scheduling policies its threads run under."""
    found = {}
    for pid, _cmd in children_of(master):
        policies = set()
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                policies.add(os.sched_getscheduler(int(task.name)))
            except OSError:  # a thread that has just ended
                continue
        found[pid] = policies
    return found


def token(provider):
    client = provider.cli_json("clients", "create", "--name", "Bank feed", "--grant-type", "client_credentials",
                               "--json")
    return client_credentials(provider, client)


@pytest.mark.parametrize(("server_kind", "options", "policy"), [
    ("granian", (), os.SCHED_BATCH),
    ("gunicorn", (), os.SCHED_BATCH),
    ("granian", ("--scheduling", "normal"), os.SCHED_OTHER),
], ids=["granian-by-default", "gunicorn-by-default", "normal"])
def test_the_master_and_every_thread_of_every_worker_run_under_the_policy(serve, server_kind, options, policy):
    provider, server = serve(workers=2, server_kind=server_kind, options=options)
    assert token(provider).status_code == 200
    assert os.sched_getscheduler(server.process.pid) == policy
    workers = policies_of_workers(server.process.pid)
    assert len(workers) == 2, workers
    assert all(policies == {policy} for policies in workers.values()), workers


def test_an_unknown_policy_is_refused_before_serving(tmp_path):
    env = provider_env("http://127.0.0.1:9", database_url=f"sqlite:///{tmp_path / 'idp.db'}",
                       instance=tmp_path / "instance")
    result = subprocess.run([*idp_command(), "serve", "--scheduling", "fifo"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "--scheduling" in result.stderr and "'fifo'" in result.stderr and "'batch'" in result.stderr
