"""What `idp serve` sets up around its workers: a shared metrics directory, and the delivery loop
(mail and back-channel logouts) and the hourly prune as supervised child processes (restarted when
they die)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..telemetry import metrics

log = logging.getLogger(__name__)

# A child that dies within this many seconds of its start is restarted after a backoff that
# doubles from RESTART_BACKOFF up to RESTART_BACKOFF_MAX; one that ran longer is restarted at once.
RESTART_QUICK_DEATH = 10.0
RESTART_BACKOFF = 0.5
RESTART_BACKOFF_MAX = 30.0


def _describe(status: int | None) -> str:
    if status is None:
        return "exit status unknown (the server reaped it first)"
    if status < 0:
        try:
            return f"killed by signal {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _wait(process: subprocess.Popen) -> int | None:
    """The child's exit code (negative: the signal), or None when someone else reaped it:
    gunicorn's arbiter waits for any child on SIGCHLD, and Popen.wait would then say 0."""
    while True:
        try:
            _pid, raw = os.waitpid(process.pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            process.returncode = -1 if process.returncode is None else process.returncode
            return None
        process.returncode = os.waitstatus_to_exitcode(raw)
        return process.returncode


class Supervised:
    """A child process kept running for the life of `idp serve`: a thread waits on it and starts
    it again when it dies, logging each death. Without it a killed mail loop stays dead and
    every mail waits until the whole server is restarted."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        self._args = args
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.process = subprocess.Popen(args)
        self._thread = threading.Thread(target=self._watch, name=f"supervise {name}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        backoff = 0.0
        while True:
            started = time.monotonic()
            status = _wait(self.process)
            if self._stopping.is_set():
                return
            quick = time.monotonic() - started < RESTART_QUICK_DEATH
            backoff = min(max(backoff * 2, RESTART_BACKOFF), RESTART_BACKOFF_MAX) if quick else 0.0
            log.error("%s (pid %s) died: %s; restarting in %.1f s", self.name, self.process.pid, _describe(status), backoff)
            if self._stopping.wait(backoff):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = subprocess.Popen(self._args)
            log.warning("%s restarted as pid %s", self.name, self.process.pid)

    def stop(self, timeout: float = 10) -> None:
        with self._lock:
            self._stopping.set()
            process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._thread.join(timeout=5)


class Sidecars:
    def __init__(self, metrics_dir: str, owned: bool, children: list[Supervised]):
        self.metrics_dir = metrics_dir
        self._owned = owned
        self.children = children

    def stop(self) -> None:
        for child in self.children:
            child.stop()
        if self._owned:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _fresh_metrics_dir() -> tuple[str, bool]:
    """PROMETHEUS_MULTIPROC_DIR if the operator set one (emptied: samples of an earlier
    start would be summed with ours), else a new directory removed at the end."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path), False
    return tempfile.mkdtemp(prefix="idp-metrics-"), True


def warn_if_limits_count_per_worker(app, workers: int) -> None:
    """Without Redis each worker keeps its own counters (limits has no storage shared between
    processes but Redis, Memcached and MongoDB): N workers let N times each limit through."""
    if workers > 1 and app.config["RATELIMIT_ENABLED"] and not app.config["REDIS_URL"]:
        log.warning(
            "rate limits count per worker: each of the %s workers allows the full limit; "
            "set IDP_REDIS_URL to count them once for all workers and instances", workers,
        )


def start(app, delivery: bool = True) -> Sidecars:
    """Call before the workers start: they and the children inherit the environment. Without
    ``delivery`` no delivery loop runs here: neither mail nor back-channel logouts leave from
    this instance, and the log says so."""
    directory, owned = _fresh_metrics_dir()
    metrics.enable_multiprocess(directory)
    children = []
    if delivery:
        children.append(Supervised("delivery loop", [sys.executable, "-m", "idp.cli", "mail", "deliver", "--loop"]))
    else:
        log.warning("no delivery loop on this instance (--no-delivery): mail and back-channel logouts stay queued "
                    "until an `idp mail deliver --loop` or another `idp serve` delivers them")
    interval = app.config["PRUNE_INTERVAL"]
    if interval:
        # Every instance runs one; the advisory lock lets one of them work at a time.
        children.append(Supervised("prune loop", [sys.executable, "-m", "idp.cli", "db", "prune", "--every", str(interval)]))
    return Sidecars(directory, owned, children)
