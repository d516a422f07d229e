"""What `idp serve` sets up around its workers: the app loaded once before they are forked, so that
they share its pages; a shared metrics directory; and the delivery loop (mail and back-channel
logouts) and the hourly prune as supervised children forked from the same loaded process
(restarted when they die), so that neither costs an interpreter and an app of its own."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..telemetry import metrics

log = logging.getLogger(__name__)

# A child that dies within this many seconds of its start is restarted after a backoff that
# doubles from RESTART_BACKOFF up to RESTART_BACKOFF_MAX; one that ran longer is restarted at once.
RESTART_QUICK_DEATH = 10.0
RESTART_BACKOFF = 0.5
RESTART_BACKOFF_MAX = 30.0
# A forked child stops when its master is gone; it looks this often.
PARENT_CHECK_INTERVAL = 1.0
# Allocations from this size on get pages of their own, returned to the system when freed
# (glibc's mallopt M_MMAP_THRESHOLD; see _return_large_blocks).
MMAP_THRESHOLD = 1024 * 1024


def _describe(status: int | None) -> str:
    if status is None:
        return "exit status unknown (the server reaped it first)"
    if status < 0:
        try:
            return f"killed by signal {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _wait(pid: int) -> int | None:
    """The child's exit code (negative: the signal), or None when someone else reaped it:
    gunicorn's arbiter waits for any child on SIGCHLD."""
    while True:
        try:
            _pid, raw = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(raw)


def _name_process(title: str) -> None:
    """The name `ps`, `top` and /proc/PID/comm show (at most 15 bytes): a forked child keeps its
    master's command line, so this is how it is told apart."""
    try:
        Path("/proc/self/comm").write_text(title[:15])
    except OSError:
        pass


def _stop_with_parent(stop: threading.Event) -> None:
    """Set ``stop`` once the process that forked this one is gone (killed without stopping us)."""
    parent = os.getppid()

    def watch():
        while not stop.wait(PARENT_CHECK_INTERVAL):
            if os.getppid() != parent:
                log.warning("the server (pid %s) is gone: stopping", parent)
                stop.set()

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def _run_child(name: str, title: str, run: Callable[[threading.Event], None]) -> None:
    """The body of a forked child: never returns, and never runs the master's exit handlers."""
    status = 0
    try:
        _name_process(title)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the server's reload signal means nothing here
        _stop_with_parent(stop)
        run(stop)
    except BaseException:  # noqa: BLE001 - whatever it was, the supervisor logs the exit and restarts it
        log.exception("%s failed", name)
        status = 1
    finally:
        logging.shutdown()
        os._exit(status)


class Supervised:
    """A child process kept running for the life of `idp serve`: forked from the loaded server (it
    shares the server's pages and costs only what it changes), it runs ``run(stop)`` and a thread
    waits on it and forks it again when it dies, logging each death. Without it a killed delivery
    loop stays dead and every mail waits until the whole server is restarted."""

    def __init__(self, name: str, title: str, run: Callable[[threading.Event], None]):
        self.name = name
        self._title = title
        self._run = run
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.pid = self._fork()
        self._thread = threading.Thread(target=self._watch, name=f"supervise {name}", daemon=True)
        self._thread.start()

    def _fork(self) -> int:
        pid = os.fork()
        if pid == 0:
            _run_child(self.name, self._title, self._run)
        return pid

    def _watch(self) -> None:
        backoff = 0.0
        while True:
            started = time.monotonic()
            status = _wait(self.pid)
            if self._stopping.is_set():
                return
            quick = time.monotonic() - started < RESTART_QUICK_DEATH
            backoff = min(max(backoff * 2, RESTART_BACKOFF), RESTART_BACKOFF_MAX) if quick else 0.0
            log.error("%s (pid %s) died: %s; restarting in %.1f s", self.name, self.pid, _describe(status), backoff)
            if self._stopping.wait(backoff):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.pid = self._fork()
            log.warning("%s restarted as pid %s", self.name, self.pid)

    def stop(self, timeout: float = 10) -> None:
        with self._lock:
            self._stopping.set()
            pid = self.pid
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
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


def preload(app) -> None:
    """Make the loaded app ready to be forked: do now, once, what each worker would otherwise do
    on its first requests (so the result is shared), give each forked process database pools of
    its own, and keep the shared pages shared (the garbage collector writes to every object it
    examines, which would copy the page it sits on into the process that examined it)."""
    from flask_babel import force_locale, get_translations
    from sqlalchemy.orm import configure_mappers

    from ..extensions import db

    configure_mappers()
    for name in app.jinja_env.list_templates(filter_func=lambda n: n.endswith((".html", ".txt"))):
        app.jinja_env.get_template(name)
    with app.test_request_context():
        for language in app.config["LANGUAGES"]:
            with force_locale(language):
                get_translations()
    with app.app_context():
        engines = list(db.engines.values())

    def fresh_pools():
        # The master holds no connections (serve disposed them), but a pool is not to be shared.
        for engine in engines:
            engine.dispose(close=False)

    os.register_at_fork(after_in_child=fresh_pools)
    _return_large_blocks()
    gc.collect()
    gc.freeze()


def _return_large_blocks() -> None:
    """glibc keeps a freed block in its heap once blocks that large have been freed before (the
    threshold grows up to 32 MiB): each of a worker's threads would keep the 19 MiB an Argon2id
    hash used. A fixed threshold maps each large block on its own and unmaps it when freed."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass


def delivery_loop(app) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        from ..services import mailer

        with app.app_context():
            mailer.deliver_forever(stop)

    return run


def prune_loop(app, every: int) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        from ..services import prune

        with app.app_context():
            prune.prune_forever(every, stop)

    return run


def start(app, delivery: bool = True) -> Sidecars:
    """Call after ``preload`` and before the workers start: they and the children inherit the
    environment. Without ``delivery`` no delivery loop runs here: neither mail nor back-channel
    logouts leave from this instance, and the log says so."""
    directory, owned = _fresh_metrics_dir()
    metrics.enable_multiprocess(directory)
    children = []
    if delivery:
        children.append(Supervised("delivery loop", "idp-delivery", delivery_loop(app)))
    else:
        log.warning("no delivery loop on this instance (--no-delivery): mail and back-channel logouts stay queued "
                    "until an `idp mail deliver --loop` or another `idp serve` delivers them")
    interval = app.config["PRUNE_INTERVAL"]
    if interval:
        # Every instance runs one; the advisory lock lets one of them work at a time.
        children.append(Supervised("prune loop", "idp-prune", prune_loop(app, interval)))
    return Sidecars(directory, owned, children)
