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
