"""The loops of `idp serve` as threads of its workers, one worker at a time (the turn): named,
started again when they fail (and the failure logged), taken over when the worker running them
dies, never taken over once the server is shutting down; and the app made ready to be forked."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from idp.ops import serving

REPO = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _recording(runs: list, name: str = "test loop", title: str = "idp-test-loop") -> serving.Loop:
    """A loop that notes its thread's name each time it starts, and runs until stopped."""

    def run(stop):
        runs.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())
        stop.wait()

    return serving.Loop(name, title, run)


def _turn(tmp_path, loops: list[serving.Loop]) -> serving.Turn:
    turn = serving.Turn(str(tmp_path / "loops.lock"), loops)
    turn.open()
    return turn


def _worker(turn: serving.Turn) -> tuple[threading.Thread, threading.Event]:
    """What a worker does with the turn, as a thread of this process: its own lock file
    description, so it competes for the lock as another process would."""
    stop = threading.Event()
    thread = threading.Thread(target=turn.keep, args=(stop,))
    thread.start()
    return thread, stop


def test_one_worker_at_a_time_runs_the_loops_and_another_takes_them_when_it_ends(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(serving, "TAKE_OVER_INTERVAL", 0.05)
    runs = []
    turn = _turn(tmp_path, [_recording(runs)])
    with caplog.at_level("INFO", logger="idp.ops.serving"):
        first, stop_first = _worker(turn)
        _wait_for(lambda: len(runs) == 1)
        second, stop_second = _worker(turn)
        time.sleep(0.3)
        assert len(runs) == 1  # the second waits for its turn
        stop_first.set()
        first.join(5)
        _wait_for(lambda: len(runs) == 2)
        stop_second.set()
        second.join(5)
    assert runs == ["idp-test-loop", "idp-test-loop"]  # named for ps -L
    assert caplog.text.count("runs the test loop") == 2
    assert "died" not in caplog.text  # the first handed its turn on


def test_the_loops_of_a_worker_that_dies_are_taken_over_and_its_death_logged(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(serving, "TAKE_OVER_INTERVAL", 0.05)
    lock = tmp_path / "loops.lock"
    _turn(tmp_path, [])
    code = ("import threading; from idp.ops import serving\n"
            "def run(stop):\n    print('running', flush=True); stop.wait()\n"
            f"serving.Turn({str(lock)!r}, [serving.Loop('test loop', 'idp-test-loop', run)]).keep(threading.Event())\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    runs = []
    try:
        assert holder.stdout.readline().strip() == "running"
        with caplog.at_level("INFO", logger="idp.ops.serving"):
            waiting, stop = _worker(serving.Turn(str(lock), [_recording(runs)]))
            time.sleep(0.3)
            assert runs == []
            holder.kill()
            holder.wait(5)
            _wait_for(lambda: len(runs) == 1)
            stop.set()
            waiting.join(5)
    finally:
        holder.kill()
        holder.stdout.close()
    assert (f"worker pid {holder.pid} died while running the test loop; worker pid {os.getpid()} runs them now"
            in caplog.text)


def test_a_loop_that_fails_is_logged_and_started_again(caplog):
    calls = []
    stop = threading.Event()

    def run(stop_):
        calls.append(time.monotonic())
        if len(calls) == 3:
            stop.set()
        raise RuntimeError("a bug in the loop")

    with caplog.at_level("WARNING", logger="idp.ops.serving"):
        thread = threading.Thread(target=serving.Loop("failing loop", "idp-failing", run).run_until, args=(stop,))
        thread.start()
        thread.join(10)
    assert not thread.is_alive() and len(calls) == 3
    assert f"failing loop (worker pid {os.getpid()}) failed; restarting in 0.5 s" in caplog.text
    assert "restarting in 1.0 s" in caplog.text  # a loop that fails at once backs off
    assert "RuntimeError: a bug in the loop" in caplog.text
    assert "failing loop restarted in worker pid" in caplog.text


def test_once_the_turn_is_closed_no_worker_takes_it(tmp_path, monkeypatch):
    """When the whole process group gets SIGTERM, the worker that runs the loops ends, and another,
    about to end too, would take them over: the master closes the turn first."""
    monkeypatch.setattr(serving, "TAKE_OVER_INTERVAL", 0.05)
    runs = []
    turn = _turn(tmp_path, [_recording(runs)])
    first, stop_first = _worker(turn)
    _wait_for(lambda: len(runs) == 1)
    second, stop_second = _worker(turn)
    turn.close()
    late, stop_late = _worker(turn)  # a worker started after: none is, but if one were
    stop_first.set()
    first.join(5)
    second.join(5)  # it gives up waiting by itself
    late.join(5)
    assert not second.is_alive() and not late.is_alive() and len(runs) == 1
    stop_second.set()
    stop_late.set()


def test_the_signals_that_stop_the_server_close_the_turn_first(tmp_path):
    sidecars = serving.Sidecars(str(tmp_path), owned=False, loops=[_recording([])])
    lock = tmp_path / "loops.lock"
    assert lock.exists()  # the turn is open
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(lock.exists()))
    try:
        sidecars.close_turn_on_signals()
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [False]  # the server's own handler ran, after the turn was closed


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


def _orphan(handler_body: str, grace: float) -> subprocess.CompletedProcess:
    """A process shaped as a granian worker (its main thread waits for the event its SIGTERM
    handler sets) that finds its server gone: _stop_orphan from another thread."""
    script = f"""
import signal, sys, threading
from idp.ops import serving
serving.ORPHAN_GRACE = {grace}
stopped = threading.Event()
def handler(signum, frame):
    {handler_body}
signal.signal(signal.SIGTERM, handler)
threading.Thread(target=serving._stop_orphan, args=(threading.main_thread(),), daemon=True).start()
stopped.wait()
print("stopped by the server's handler", flush=True)
"""
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=30)


def test_a_worker_whose_server_is_gone_is_stopped_by_the_handler_of_its_main_thread():
    started = time.monotonic()
    done = _orphan("stopped.set()", grace=20)
    assert done.returncode == 0, done.stderr
    assert "stopped by the server's handler" in done.stdout
    assert time.monotonic() - started < 15  # not by the grace's end


def test_a_worker_that_does_not_stop_when_its_server_is_gone_ends_after_the_grace():
    done = _orphan("pass  # a request that does not end", grace=0.5)
    assert done.returncode == 1
    assert "did not stop within" in done.stderr and "ending it now" in done.stderr
    assert "stopped by the server's handler" not in done.stdout


def test_a_stop_signal_taken_by_another_thread_still_reaches_the_servers_handler():
    """The kernel may hand a signal sent to the process to any thread that does not block it; the
    handler (granian's sets the event its worker's main thread waits for) runs only in the main
    thread, once that thread wakes. Here only another thread can take SIGTERM: the watch wakes
    the main thread, and the worker stops."""
    script = """
import os, signal, sys, threading, time
from idp.ops import serving
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
taker = threading.Thread(target=time.sleep, args=(60,), daemon=True)  # SIGTERM not blocked here
taker.start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the main thread, and threads it starts
serving._watch_worker(threading.Event(), wake=True)
print("waiting", flush=True)
stopped.wait()
print("stopped by the server's handler", flush=True)
"""
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "waiting"
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=10)
    finally:
        worker.kill()
    assert worker.returncode == 0
    assert "stopped by the server's handler" in out
