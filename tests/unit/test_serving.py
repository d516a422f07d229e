"""The children `idp serve` forks from its loaded app: named, forked again when they die (and the
death logged), stopped with the server; and the app made ready to be forked."""

from __future__ import annotations

import gc
import os
import signal
import time
from pathlib import Path

from idp.ops import serving


def _wait_for(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _writes_its_pid(path: Path):
    def run(stop):
        path.write_text(str(os.getpid()))
        stop.wait(60)

    return run


def test_a_forked_child_is_named_and_forked_again_when_it_dies(tmp_path, caplog):
    marker = tmp_path / "pid"
    with caplog.at_level("WARNING", logger="idp.ops.serving"):
        child = serving.Supervised("test loop", "idp-test-loop", _writes_its_pid(marker))
        try:
            _wait_for(lambda: marker.exists() and marker.read_text() == str(child.pid))
            first = child.pid
            assert Path(f"/proc/{first}/comm").read_text().strip() == "idp-test-loop"
            os.kill(first, signal.SIGKILL)
            _wait_for(lambda: child.pid != first and marker.read_text() == str(child.pid))
        finally:
            child.stop()
    assert f"test loop (pid {first}) died: killed by signal SIGKILL; restarting in 0.5 s" in caplog.text
    assert f"test loop restarted as pid {child.pid}" in caplog.text
    assert not _alive(first) and not _alive(child.pid)


def test_a_child_that_fails_exits_and_is_forked_again(tmp_path, caplog):
    runs = tmp_path / "runs"
    runs.mkdir()

    def run(stop):
        (runs / str(os.getpid())).touch()
        raise RuntimeError("a bug in the loop")

    with caplog.at_level("WARNING", logger="idp.ops.serving"):
        child = serving.Supervised("failing loop", "idp-failing", run)
        try:
            _wait_for(lambda: len(list(runs.iterdir())) >= 2)
        finally:
            child.stop()
    assert "failing loop (pid" in caplog.text and "died: exit status 1" in caplog.text


def test_stop_ends_the_child_with_sigterm_and_it_is_not_forked_again(tmp_path, caplog):
    marker = tmp_path / "pid"
    with caplog.at_level("WARNING", logger="idp.ops.serving"):
        child = serving.Supervised("test loop", "idp-test-loop", _writes_its_pid(marker))
        _wait_for(marker.exists)
        pid = child.pid
        started = time.monotonic()
        child.stop()
    assert time.monotonic() - started < 5  # the loop's stop event was set: no SIGKILL needed
    assert not _alive(pid) and child.pid == pid
    assert "died" not in caplog.text


def test_preload_compiles_templates_and_freezes_what_is_loaded(app):
    try:
        serving.preload(app)
        assert gc.get_freeze_count() > 0
        cached = {key[1] for key in app.jinja_env.cache.keys()} if app.jinja_env.cache is not None else set()
        assert "base.html" in cached
    finally:
        gc.unfreeze()


def test_serving_loads_neither_alembic_nor_redis_when_it_needs_neither(tmp_path):
    """What `idp serve` imports (the command line and the app) leaves out Flask-Migrate and Alembic
    (only `idp db` needs them) and redis-py (only with IDP_REDIS_URL): every byte the master loads
    is in every worker's memory too."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS_"))}
    env.update(IDP_ENV="production", IDP_ISSUER="https://login.example.com", IDP_SECRET_KEY="k" * 64,
               IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.db'}", IDP_INSTANCE_PATH=str(tmp_path))
    code = ("import sys; from idp.cli import cli; from idp import create_app; create_app(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'flask_migrate', 'redis'}))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    env["IDP_REDIS_URL"] = "redis://127.0.0.1:1/0"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "['redis']", result.stderr
