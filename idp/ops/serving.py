"""What `idp serve` sets up around its workers: the app loaded once before they are forked, so that
they share its pages; a shared metrics directory; and the delivery loop (mail and back-channel
logouts), the hourly prune and, on SQLite, the checkpoints (``sqlite_checkpoints``) as threads of
one worker at a time (the turn: a lock that the kernel hands to another worker the moment the
holder dies), so that none costs a process, an interpreter or a copy of the app of its own."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
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

from .. import sqlite_checkpoints
from ..extensions import db
from ..telemetry import logs, metrics

log = logging.getLogger(__name__)

# A loop that fails within this many seconds of its start is started again after a backoff that
# doubles from RESTART_BACKOFF up to RESTART_BACKOFF_MAX; one that ran longer is started at once.
RESTART_QUICK_DEATH = 10.0
RESTART_BACKOFF = 0.5
RESTART_BACKOFF_MAX = 30.0
# A worker that does not run a loop tries this often to take it over (the holder's lock is free
# the moment the holder dies or ends).
TAKE_OVER_INTERVAL = 1.0
# A worker looks this often whether its master is still there.
PARENT_CHECK_INTERVAL = 1.0
# Sent to a worker's main thread to wake it (_wake); ignored by default, and used for nothing else
# (out-of-band TCP data on a socket the process owns, which no socket here asks for).
WAKE_SIGNAL = signal.SIGURG
# A worker whose master is gone is asked to stop (SIGTERM, as its master would); one still there
# this many seconds later ends at once: as long as a server stopped by SIGTERM waits for its
# workers before it kills them (gunicorn's graceful_timeout, idp/cli/serve.py).
ORPHAN_GRACE = 10.0
# glibc's mallopt M_ARENA_MAX: the heaps a process's threads allocate from (see _tune_malloc).
MALLOC_ARENAS = 1
# A worker whose heap holds at least TRIM_MIN_FREE bytes that it does not use gives them back to the
# system, at most once every TRIM_INTERVAL seconds (see Heap).
TRIM_INTERVAL = 5.0
TRIM_MIN_FREE = 8 << 20


def _name_thread(title: str) -> None:
    """The name `ps -L`, `top -H` and /proc/PID/task/TID/comm show for the calling thread (at most 15
    bytes): how an operator sees which worker runs a loop."""
    try:
        Path(f"/proc/self/task/{threading.get_native_id()}/comm").write_text(title[:15])
    except OSError:
        pass


class Loop:
    """One of the loops beside the server's requests: ``run(stop)`` in a thread named ``title``
    (`ps -L`, `top -H`), started again when it fails (each failure logged) until ``stop`` is set."""

    def __init__(self, name: str, title: str, run: Callable[[threading.Event], None]):
        self.name = name
        self.title = title
        self._run = run

    def run_until(self, stop: threading.Event) -> None:
        _name_thread(self.title)
        backoff = 0.0
        while True:
            started = time.monotonic()
            error = None
            try:
                self._run(stop)
            except Exception as exc:  # noqa: BLE001 - whatever it was, it is logged and the loop starts again
                error = exc
            if stop.is_set():
                return
            quick = time.monotonic() - started < RESTART_QUICK_DEATH
            backoff = min(max(backoff * 2, RESTART_BACKOFF), RESTART_BACKOFF_MAX) if quick else 0.0
            log.error("%s (worker pid %s) %s; restarting in %.1f s", self.name, os.getpid(),
                      "ended by itself" if error is None else "failed", backoff, exc_info=error)
            if stop.wait(backoff):
                return
            log.warning("%s restarted in worker pid %s", self.name, os.getpid())


class Turn:
    """The workers' turn at the loops: one worker at a time runs them all. Every worker keeps a
    thread that waits for the turn's lock (``flock`` on ``lock_path``); the one that has it runs
    each loop in a thread of its own until its worker ends. The kernel frees the lock of a worker
    that dies, however it dies, and another worker (or the one the server starts in its place)
    takes the turn within TAKE_OVER_INTERVAL. The holder's pid is in the lock file while it has
    the turn, so a take-over says whose loops died with it. The master creates the lock file
    (``open``) before it forks the workers and removes it (``close``) when the server shuts
    down: from then on no worker takes the turn."""

    def __init__(self, lock_path: str, loops: list[Loop]):
        self.lock_path = lock_path
        self.loops = loops
        self._names = ", ".join(loop.name for loop in loops)

    def open(self) -> None:
        os.close(os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600))

    def close(self) -> None:
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass

    def keep(self, stop: threading.Event) -> None:
        """A worker's waiting thread: wait for the turn, run the loops until ``stop``, hand the turn on."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # closed: the server is shutting down
            return
        try:
            if not self._take(fd, stop):
                return
            threads = [threading.Thread(target=loop.run_until, args=(stop,), name=loop.name) for loop in self.loops]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            os.ftruncate(fd, 0)  # a clean end: whoever takes the turn next has nothing to report
        finally:
            os.close(fd)  # frees the lock

    def _take(self, fd: int, stop: threading.Event) -> bool:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                locked = False
            if os.fstat(fd).st_nlink == 0:  # closed: the server is shutting down
                return False
            if locked:
                break
            if stop.wait(TAKE_OVER_INTERVAL):
                return False
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        if previous:
            log.error("worker pid %s died while running the %s; worker pid %s runs them now",
                      previous, self._names, os.getpid())
        else:
            log.info("worker pid %s runs the %s", os.getpid(), self._names)
        return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


class Heap:
    """glibc's heap of this process: what it holds free, and giving that back to the system.

    A worker's heap keeps the 19 MiB block of its last Argon2id hash once it is freed (_tune_malloc):
    a server that has run a sign-in holds one such block per worker until it stops. ``give_back``
    (every TRIM_INTERVAL seconds, from each worker's watch thread) returns the free pages once they
    add up to ``at_least`` bytes: the next hash maps its block afresh, at the price of its page
    faults (about 5 ms), at most once per interval, whatever the rate of sign-ins. mallinfo2's free
    bytes count pages already given back too: a trim with nothing left to give back costs about
    0.3 ms."""

    def __init__(self, libc):
        self._trim = libc.malloc_trim
        self._info = libc.mallinfo2
        self._info.restype = _MallInfo2

    @classmethod
    def of_this_process(cls) -> Heap | None:
        """None where the allocator is not glibc's (2.33 or later): it decides by itself."""
        try:
            return cls(ctypes.CDLL(None))
        except (OSError, AttributeError):
            return None

    def free_bytes(self) -> int:
        return self._info().fordblks

    def give_back(self, at_least: int) -> bool:
        if self.free_bytes() < at_least:
            return False
        self._trim(0)
        return True


def _watch_worker(stop: threading.Event, wake: bool = False) -> None:
    """Set ``stop`` when this worker ends (its main thread is done: the server stopped it) or its
    master is gone (killed without stopping it): the loops' threads end with the worker, and a
    worker whose master is gone ends too (gunicorn's do by themselves, granian's go on serving).
    Meanwhile give the heap's free memory back every TRIM_INTERVAL seconds (Heap), and, with
    ``wake``, wake the main thread every PARENT_CHECK_INTERVAL (_wake): a stop signal another
    thread took reaches the server's handler within that time. With ``wake``, call from the main
    thread (it sets WAKE_SIGNAL's handler)."""
    parent = os.getppid()
    main = threading.main_thread()
    heap = Heap.of_this_process()
    if wake:
        signal.signal(WAKE_SIGNAL, _woken)

    def watch():
        next_trim = time.monotonic() + TRIM_INTERVAL
        while not stop.is_set():
            main.join(PARENT_CHECK_INTERVAL)
            if not main.is_alive():
                stop.set()
                return
            if wake:
                _wake(main)
            if os.getppid() != parent:
                log.warning("the server (pid %s) is gone: worker pid %s stopping", parent, os.getpid())
                stop.set()
                _stop_orphan(main)
                return
            if heap is not None and time.monotonic() >= next_trim:
                heap.give_back(TRIM_MIN_FREE)
                next_trim = time.monotonic() + TRIM_INTERVAL

    threading.Thread(target=watch, name="worker watch", daemon=True).start()


def _woken(_signum, _frame) -> None:
    """WAKE_SIGNAL's handler: nothing to do; being run is what makes the main thread run the
    handlers of the signals that came meanwhile."""


def _wake(main: threading.Thread) -> None:
    """Interrupt the main thread's wait. A signal sent to the process (SIGTERM from the master, a
    service manager or `kill`) goes to whichever of its threads the kernel picks; Python runs its
    handler in the main thread, the next time that thread runs. A granian worker's main thread
    sleeps until its SIGTERM handler wakes it: with the signal taken by another thread (one of
    the loops', the log writer's, the server's own), it would sleep on and the worker would never
    stop. Woken, it runs the handler of any signal that came and sleeps again. Not for gunicorn's
    workers: their main thread wakes every second by itself, and each signal would leave a byte
    in the pipe gunicorn gives signal.set_wakeup_fd, which its threaded worker never reads."""
    try:
        signal.pthread_kill(main.ident, WAKE_SIGNAL)
    except (OSError, ValueError):  # the main thread just ended
        pass


def _stop_orphan(main: threading.Thread) -> None:
    """Stop this worker as its master would: SIGTERM, whose handler (the server's) runs in the main
    thread. The signal goes to the main thread itself: sent to the process, the kernel may hand it
    to another thread (this one), and the main thread, asleep in the server's wait, would never
    run the handler. A worker still there after ORPHAN_GRACE (a request or a loop that does not
    end) ends at once: without its master nothing else would end it."""
    signal.pthread_kill(main.ident, signal.SIGTERM)
    time.sleep(ORPHAN_GRACE)  # a daemon thread: it goes with the worker if the worker ends first
    log.error("worker pid %s did not stop within %.0f s of its server's end; ending it now",
              os.getpid(), ORPHAN_GRACE)
    logs.write_pending(timeout=1.0)
    os._exit(1)


class Sidecars:
    """What `idp serve` runs beside its workers' requests: the metrics directory they share and the
    loops they take turns at. In the master: ``close_turn_on_signals`` once the server has set its
    signal handlers, ``stop`` at the end; in each worker: ``in_worker`` once it is forked."""

    def __init__(self, metrics_dir: str, owned: bool, loops: list[Loop]):
        self.metrics_dir = metrics_dir
        self._owned = owned
        self.loops = loops
        self._turn = Turn(os.path.join(metrics_dir, "loops.lock"), loops) if loops else None
        if self._turn is not None:
            self._turn.open()

    def in_worker(self, wake: bool = False) -> None:
        """Watch this worker's end and its master (``wake``: and wake its main thread, see _wake),
        and start its thread that waits for its turn at the loops. Neither that thread nor the
        loops' are daemons: a worker that ends lets a running round finish. Call from the
        worker's main thread."""
        logs.write_in_batches()
        stop = threading.Event()
        _watch_worker(stop, wake)
        if self._turn is not None:
            threading.Thread(target=self._turn.keep, args=(stop,), name="loops turn").start()

    def close_turn_on_signals(self) -> None:
        """Make the signals that stop the server (SIGTERM, SIGINT, SIGQUIT) close the turn before the
        server's own handler runs: when the whole process group gets SIGTERM, the worker that runs
        the loops ends, and no other worker, about to end itself, may take them over."""
        if self._turn is None:
            return
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            previous = signal.getsignal(number)
            if callable(previous):
                signal.signal(number, functools.partial(_close_then, self._turn, previous))

    def stop(self) -> None:
        if self._turn is not None:
            self._turn.close()
        if self._owned:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def _close_then(turn: Turn, handler, signum, frame) -> None:
    turn.close()
    handler(signum, frame)


def _fresh_metrics_dir() -> tuple[str, bool]:
    """PROMETHEUS_MULTIPROC_DIR if the operator set one (emptied: samples of an earlier
    start would be summed with ours), else a new directory removed at the end."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in [*path.glob("*.db"), *path.glob("*.lock")]:
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

    configure_mappers()
    for name in app.jinja_env.list_templates(filter_func=lambda n: n.endswith((".html", ".txt"))):
        app.jinja_env.get_template(name)
    # An app context is enough for Flask-Babel (a test request context would load flask.testing,
    # and with it click.testing and pdb, into every process).
    with app.app_context():
        for language in app.config["LANGUAGES"]:
            with force_locale(language):
                get_translations()
        engines = list(db.engines.values())

    def fresh_pools():
        # The master holds no connections (serve disposed them), but a pool is not to be shared.
        for engine in engines:
            engine.dispose(close=False)

    os.register_at_fork(after_in_child=fresh_pools)
    _tune_malloc()
    gc.collect()
    gc.freeze()
    # What the master loads after this (the server itself) is shared with the workers too.
    os.register_at_fork(before=gc.freeze)


def _tune_malloc() -> None:
    """Two things glibc's allocator does not do by itself.

    It gives each thread that allocates while another does a heap (an arena) of its own, and keeps
    a freed block in it once blocks that large have been freed before (the threshold grows up to
    32 MiB): each of a worker's threads would keep the 19 MiB an Argon2id hash used. One heap per
    process, where a worker hashes one password at a time (services.passwords), keeps one such
    block per worker, which every hash uses again, until the worker's watch thread gives it back
    (Heap: at most once every TRIM_INTERVAL seconds). (Mapping each hash's block on its own and
    unmapping it when freed keeps nothing, but costs 4,865 page faults, about 6 ms, per hash.)

    It keeps the free pages inside its heap (loading the app leaves a few MiB of them): a forked
    process maps them too, and the first of its allocations to land there copies the page.
    ``malloc_trim`` right before each fork gives them back to the system instead."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-8, MALLOC_ARENAS)  # M_ARENA_MAX
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: its allocator decides
        return
    os.register_at_fork(before=lambda: trim(0))


SCHEDULING = {"batch": getattr(os, "SCHED_BATCH", None), "normal": getattr(os, "SCHED_OTHER", None)}


def schedule(policy: str) -> None:
    """Run this process, and every thread and worker it starts from now on, under the kernel's
    scheduling ``policy``: ``batch`` (SCHED_BATCH) or ``normal`` (SCHED_OTHER, the default of
    every process).

    A request hands the CPU from thread to thread: granian's I/O thread wakes a Python thread with
    it, the Python thread wakes the I/O thread with the answer while it holds the GIL, and Python
    threads wake each other handing the GIL on. Under ``normal`` a woken thread may take the CPU
    from the thread that woke it, at once: the one holding the GIL too, which the others then wait
    for. Under ``batch`` a woken thread of the server waits until the running one blocks or its
    time slice ends; threads of other programs still preempt the server's. bench/README.md
    measures it: 6-9 context switches a client-credentials token or an introspection under
    ``normal``, 1-2 under ``batch``, and a fifth to a quarter less CPU for each. A woken thread may
    then wait up to a time slice, so under saturation the slowest requests wait longer (p99); at
    half the peak rate p99 is unchanged.
    Policy changes need no privilege; where the kernel refuses, the server runs on as it is."""
    value = SCHEDULING[policy]
    if value is None:
        log.warning("this system has no %s scheduling policy: serving under the default", policy)
        return
    try:
        os.sched_setscheduler(0, value, os.sched_param(0))
    except OSError as exc:
        log.warning("could not serve under the %s scheduling policy (%s): serving under the default", policy, exc)


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
    """Call after ``preload`` and before the workers start: they inherit the environment, and each
    calls ``in_worker`` of what this returns. Without ``delivery`` no delivery loop runs here:
    neither mail nor back-channel logouts leave from this instance, and the log says so."""
    directory, owned = _fresh_metrics_dir()
    metrics.enable_multiprocess(directory)
    loops = []
    if delivery:
        loops.append(Loop("delivery loop", "idp-delivery", delivery_loop(app)))
    else:
        log.warning("no delivery loop on this instance (--no-delivery): mail and back-channel logouts stay queued "
                    "until an `idp mail deliver --loop` or another `idp serve` delivers them")
    interval = app.config["PRUNE_INTERVAL"]
    if interval:
        # Every instance runs one; the advisory lock lets one of them work at a time.
        loops.append(Loop("prune loop", "idp-prune", prune_loop(app, interval)))
    with app.app_context():
        engine = db.engine
    database = sqlite_checkpoints.database_file(engine)
    if database:
        loops.append(Loop("checkpoint loop", "idp-checkpoint",
                          functools.partial(sqlite_checkpoints.checkpoint_forever, database)))
    return Sidecars(directory, owned, loops)
