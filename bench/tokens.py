#!/usr/bin/env python3
"""Token and login throughput of idp, next to node-oidc-provider.

Run from the repository root with the virtualenv active:

    python bench/tokens.py [--duration 10] [--connections 16] [--threads 2]
                           [--warmup 3] [--workers 2] [--logins 160]

Parts (see bench/README.md for what every figure means):

1. client_credentials tokens/s, p50/p99 latency and non-2xx count, measured
   with wrk against `idp serve` and against node-oidc-provider
   (bench/node/server.js), then the ratio idp/node and the resident memory of
   every server process after its run; the same for the refresh grant (each
   request rotates a refresh token of a pool issued beforehand, each sent
   once) and for introspection of a valid access token;
2. full interactive logins/s through HTTP (authorize with PKCE, e-mail,
   password, TOTP, code exchange), after a set-up phase that does each
   account's first login (e-mail code + TOTP enrolment);
3. Argon2id hashes/s with the project's password-hashing parameters.

It prints figures; it asserts nothing. All load goes to 127.0.0.1 only, every
loop is bounded, and every process it starts is stopped on exit (also on
Ctrl-C or an error). Temporary files are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
NODE_DIR = BENCH_DIR / "node"
LUA_SCRIPT = BENCH_DIR / "post_token.lua"
HOST = "127.0.0.1"  # the only address this benchmark ever talks to

# The test suite's SMTP sink (tests/ is a package at the repository root).
sys.path.insert(0, str(REPO_ROOT))
from tests.smtp_sink import Sink  # noqa: E402

NODE_CLIENT_ID = "bench"
NODE_CLIENT_SECRET = "bench-secret"


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


# --------------------------------------------------------------------------
# process bookkeeping and cleanup
# --------------------------------------------------------------------------


class Processes:
    """Every subprocess started here, each in its own process group.

    Servers are started with start_new_session=True, so their group id is
    their own pid; stopping a server signals exactly that group (gunicorn's
    master and workers, node's primary and workers) and nothing else.
    """

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._lock = threading.Lock()

    def start(self, name: str, cmd: list[str], **kwargs: Any) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        with self._lock:
            self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # Stray members of the group (a worker that outlived its master).
        _signal_group(proc.pid, signal.SIGKILL)
        with self._lock:
            self._procs = [(n, p) for n, p in self._procs if p is not proc]

    def stop_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for _, proc in reversed(procs):
            self.stop(proc)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _raise_keyboard_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http_ok(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> dict:
    """Poll `url` until it answers 200 with JSON; fail if `proc` dies."""
    import requests

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode} before answering; "
                             f"log tail:\n{tail(log)}")
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == 200:
                return r.json()
            last = f"HTTP {r.status_code}"
        except (requests.RequestException, ValueError) as exc:
            last = type(exc).__name__
        time.sleep(0.25)
    raise BenchError(f"{url} did not answer 200 within {timeout:.0f}s ({last}); log tail:\n{tail(log)}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------


# RSS and PSS of every process of a server's tree: bench/process_memory.py.
import process_memory as memory  # noqa: E402


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


@dataclass
class WrkResult:
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    non_2xx_3xx: int = 0  # wrk's own count (status >= 400)
    statuses: dict[int, int] = field(default_factory=dict)  # from the Lua script
    socket_errors: dict[str, int] = field(default_factory=dict)
    pool_exhausted: int = 0  # wrk threads that ran out of pre-issued tokens
    seconds: float | None = None  # how long the run lasted
    cpu_seconds: float | None = None  # utime + stime of the server's process tree during the run
    store_cpu_seconds: float | None = None  # of a store outside that tree (node's Redis, idp's PostgreSQL)
    store_name: str | None = None
    context_switches: int | None = None  # of the server's threads during the run
    raw: str = ""

    @property
    def non_200(self) -> int:
        if self.statuses:
            return sum(n for status, n in self.statuses.items() if status != 200)
        return self.non_2xx_3xx

    @property
    def cpu_us_per_request(self) -> float | None:
        """The server's CPU time per request served (its whole process tree, wrk not included)."""
        if self.cpu_seconds is None or not self.requests:
            return None
        return self.cpu_seconds / self.requests * 1e6

    @property
    def store_cpu_us_per_request(self) -> float | None:
        """The CPU time of the server's store outside its tree (node's Redis, idp's PostgreSQL)
        per request served."""
        if self.store_cpu_seconds is None or not self.requests:
            return None
        return self.store_cpu_seconds / self.requests * 1e6

    @property
    def switches_per_request(self) -> float | None:
        """The server's context switches per request served (all threads of its process tree)."""
        if self.context_switches is None or not self.requests:
            return None
        return self.context_switches / self.requests

    @property
    def socket_error_total(self) -> int:
        return sum(v for k, v in self.socket_errors.items() if k != "status")

    @property
    def clean(self) -> bool:
        return self.requests_per_s is not None and self.non_200 == 0 and self.socket_error_total == 0

    @property
    def valid(self) -> bool:
        """Every request answered 200 and no wrk thread ran out of its pool: a figure to compare."""
        return self.clean and not self.pool_exhausted

    def faults(self) -> str:
        """What makes the run invalid, with the counts."""
        out = []
        if self.non_200:
            out.append(f"{self.non_200} non-200 (" + ",".join(f"{s}:{n}" for s, n in sorted(self.statuses.items())
                                                              if s != 200) + ")")
        if self.socket_error_total:
            out.append(f"{self.socket_error_total} socket errors")
        if self.pool_exhausted:
            out.append(f"pool used up by {self.pool_exhausted} wrk thread(s)")
        return "; ".join(out)


def parse_duration_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"unparseable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def parse_wrk(output: str) -> WrkResult:
    res = WrkResult(raw=output)
    m = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if m:
        res.requests_per_s = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in ", output, re.M)
    if m:
        res.requests = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if m:
        res.non_2xx_3xx = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        res.socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    # wrk --latency's human-readable distribution ...
    for pct, value in re.findall(r"^\s+(50|90|99)%\s+([\d.]+(?:us|ms|s|m|h))\s*$", output, re.M):
        setattr(res, f"p{pct}_ms", parse_duration_us(value) / 1e3)
    # ... superseded by the exact figures the Lua script prints.
    for pct, us in re.findall(r"^bench:latency_us p(50|90|99) (\d+)$", output, re.M):
        setattr(res, f"p{pct}_ms", int(us) / 1e3)
    for status, n in re.findall(r"^bench:status (\d+) (\d+)$", output, re.M):
        res.statuses[int(status)] = int(n)
    m = re.search(r"^bench:pool_exhausted (\d+)$", output, re.M)
    if m:
        res.pool_exhausted = int(m.group(1))
    m = re.search(r"^bench:duration_us (\d+)$", output, re.M)
    if m:
        res.seconds = int(m.group(1)) / 1e6
    m = re.search(r"^bench:errors connect=(\d+) read=(\d+) write=(\d+) status=(\d+) timeout=(\d+)$",
                  output, re.M)
    if m:
        res.socket_errors = dict(zip(("connect", "read", "write", "status", "timeout"),
                                     map(int, m.groups())))
    return res


def run_wrk(url: str, authorization: str, threads: int, connections: int, seconds: int,
            timeout_s: int, body: str | None = None, pool: Path | None = None,
            server_pid: int | None = None, store: Store | None = None) -> WrkResult:
    """wrk with post_token.lua: client_credentials, or ``body``; with ``pool`` (files
    POOL.0, POOL.1, ... one per wrk thread), ``body`` followed by the next line of the pool.
    With ``server_pid``, the CPU time of that process and its descendants during the run;
    with ``store``, that of the store's processes apart."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("wrk not found (apt-get install -y wrk)")
    if urllib.parse.urlsplit(url).hostname != HOST:
        raise BenchError(f"refusing to send load to {url}: only {HOST} is allowed")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
           "--latency", "-s", str(LUA_SCRIPT), url, "--", authorization]
    if body is not None:
        cmd.append(body)
        if pool is not None:
            cmd.append(str(pool))
    cpu_before = sum(memory.cpu_seconds(server_pid)) if server_pid else None
    switches_before = memory.context_switches(server_pid) if server_pid else None
    store_before = store.cpu_seconds() if store else None
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + timeout_s + 30}s") from exc
    cpu_after = sum(memory.cpu_seconds(server_pid)) if server_pid else None
    switches_after = memory.context_switches(server_pid) if server_pid else None
    store_after = store.cpu_seconds() if store else None
    if cp.returncode != 0:
        raise BenchError(f"wrk exited with {cp.returncode}: {cp.stderr.strip() or cp.stdout.strip()}")
    res = parse_wrk(cp.stdout + cp.stderr)
    if server_pid:
        res.cpu_seconds = cpu_after - cpu_before
        res.context_switches = switches_after - switches_before
    if store:
        res.store_cpu_seconds, res.store_name = store_after - store_before, store.name
    if res.requests_per_s is None:
        raise BenchError(f"could not parse wrk output:\n{cp.stdout}\n{cp.stderr}")
    return res


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: form-urlencode both parts before base64.
    user = urllib.parse.quote(client_id, safe="")
    pw = urllib.parse.quote(secret, safe="")
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def probe_token(token_endpoint: str, client_id: str, secret: str) -> str:
    """One request outside the load run: must be 200 with an access token."""
    import requests

    r = requests.post(token_endpoint, data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic_auth(client_id, secret),
                               "Accept": "application/json"}, timeout=10)
    if r.status_code != 200:
        raise BenchError(f"token endpoint answered {r.status_code}: {r.text[:300]}")
    try:
        token = r.json()["access_token"]
    except (ValueError, KeyError) as exc:
        raise BenchError(f"no access_token in token response: {r.text[:300]}") from exc
    return f"{token_kind(token)}, {len(token)} chars, token_type={r.json().get('token_type')}"


def token_kind(token: str) -> str:
    """What an access token is: idp's self-contained machine token (``mt1.``, claims and a MAC,
    no signature: idp/oauth/machine_tokens.py), a JWT (three parts, a signature), or opaque."""
    if token.startswith("mt1."):
        return "idp machine token (mt1., HMAC-SHA256)"
    return "JWT" if token.count(".") == 2 else "opaque"


@dataclass
class TokenRun:
    name: str
    pid: int | None = None  # the server's first process (its tree's CPU time is measured)
    store: Store | None = None  # a store's processes outside that tree, measured apart
    result: WrkResult | None = None
    error: str | None = None
    token_format: str | None = None
    memory: list[memory.ProcessMemory] = field(default_factory=list)
    # The refresh and introspection benches: a result, or why there is none.
    refresh: WrkResult | None = None
    refresh_error: str | None = "skipped"
    introspection: WrkResult | None = None
    introspection_error: str | None = "skipped"
    refresh_rate: float | None = None  # refreshes/s the measured run's pool was sized for
    refresh_pool: int | None = None  # refresh tokens of the measured run
    refresh_reuse: int | None = None  # of REUSE_SENDS sends of one refresh token, those answered 200


@dataclass
class Store:
    """A server's store running on this machine outside the server's process tree: its name and
    the process whose tree's CPU time is measured apart (Redis's; PostgreSQL's postmaster, with
    its backends)."""

    name: str
    pid: int

    def cpu_seconds(self) -> float:
        """The CPU time of the store's processes, live and ended (those it has reaped)."""
        return sum(memory.cpu_seconds(self.pid)) + memory.reaped_cpu_seconds(self.pid)


def local_store(name: str, url: str, pid, process: str) -> Store | None:
    """The store at ``url`` as a ``Store``, where it runs on this machine and the process numbered
    ``pid`` is named ``process`` (not a container's own numbering); None elsewhere."""
    if urllib.parse.urlsplit(url).hostname not in (HOST, "localhost", "::1") or not pid:
        return None
    try:
        return Store(name, int(pid)) if Path(f"/proc/{pid}/comm").read_text().startswith(process) else None
    except OSError:
        return None


def postgresql_store(database_url: str) -> Store | None:
    """idp's PostgreSQL on this machine (a TCP address; not a Unix socket's): its postmaster, the
    parent of a backend that is a postgres process of this machine."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
            stat = memory._stat(backend)  # noqa: SLF001 - the parent of a process
    except psycopg.Error:
        return None
    if stat is None or local_store("PostgreSQL", url, backend, "postgres") is None:
        return None
    return local_store("PostgreSQL", url, stat[0], "postgres")


@dataclass
class Pool:
    """How a server's refresh tokens are issued (``issue(N)`` issues N new ones on the server and
    returns them), where the per-thread files go, and the access token to introspect."""

    directory: Path
    issue: Callable[[int], list[str]]
    access_token: str | None = None

    def files(self, name: str, tokens: list[str], threads: int) -> Path:
        """``tokens`` split into one file per wrk thread (``NAME.0``, ``NAME.1``, ...)."""
        path = self.directory / name
        for i in range(threads):
            Path(f"{path}.{i}").write_text("".join(t + "\n" for t in tokens[i::threads]))
        return path


# The refresh rate is measured first, in a short run of its own, so that the pools of the warm-up
# and the measured run are sized from it (and the warm-up's rate): rate x seconds x --pool-factor.
CALIBRATION_SECONDS = 2
CALIBRATION_POOL = 10_000  # doubled (up to three times) while a calibration run uses it up
MAX_POOL = 1_000_000  # bench/pool.py's bound


def pool_size(rate: float, seconds: int, args: argparse.Namespace) -> int:
    """Refresh tokens for ``seconds`` of load at ``rate`` with the safety factor, at least 100
    per wrk thread."""
    return max(100 * args.threads, int(rate * seconds * args.pool_factor) + 1)


def measure_tokens(run: TokenRun, token_endpoint: str, client_id: str, secret: str,
                   args: argparse.Namespace) -> None:
    run.token_format = probe_token(token_endpoint, client_id, secret)
    auth = basic_auth(client_id, secret)
    if args.warmup > 0:
        run_wrk(token_endpoint, auth, args.threads, args.connections, args.warmup, args.wrk_timeout)
    run.result = run_wrk(token_endpoint, auth, args.threads, args.connections, args.duration,
                         args.wrk_timeout, server_pid=run.pid, store=run.store)
    run.memory = memory.tree(run.pid)


def probe_introspection(endpoint: str, auth: str, token: str) -> None:
    """One request outside the load run: the pre-issued access token must be active."""
    import requests

    r = requests.post(endpoint, data={"token": token}, timeout=10,
                      headers={"Authorization": auth, "Accept": "application/json"})
    if r.status_code != 200 or r.json().get("active") is not True:
        raise BenchError(f"introspection answered {r.status_code}: {r.text[:300]}")


def measure_introspection(run: TokenRun, endpoint: str, auth: str, pool: Pool,
                          args: argparse.Namespace) -> None:
    """Introspection of one valid access token with client authentication, over and over."""
    try:
        if urllib.parse.urlsplit(endpoint).hostname != HOST:
            raise BenchError(f"introspection endpoint {endpoint} is not on {HOST}")
        probe_introspection(endpoint, auth, pool.access_token)
        body = "token=" + urllib.parse.quote(pool.access_token, safe="")
        if args.warmup > 0:
            run_wrk(endpoint, auth, args.threads, args.connections, args.warmup, args.wrk_timeout, body)
        run.introspection = run_wrk(endpoint, auth, args.threads, args.connections, args.duration,
                                    args.wrk_timeout, body, server_pid=run.pid, store=run.store)
        run.introspection_error = None
    except BenchError as exc:
        run.introspection_error = str(exc)


def post_refresh(token_endpoint: str, auth: str, refresh_token: str):
    """One refresh-grant request on a connection of its own (``requests``' answer)."""
    import requests

    return requests.post(token_endpoint, data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         headers={"Authorization": auth, "Accept": "application/json"}, timeout=10)


def probe_refresh(token_endpoint: str, auth: str, refresh_token: str) -> None:
    """One refresh outside the load runs: 200 with a new access token, a new refresh token and
    an ID token, so that the rates are those of real rotations."""
    r = post_refresh(token_endpoint, auth, refresh_token)
    try:
        body = r.json()
    except ValueError:
        body = {}
    if r.status_code != 200 or not body.get("access_token") or not body.get("id_token") \
            or body.get("refresh_token") in (None, refresh_token):
        raise BenchError(f"a refresh answered {r.status_code}: {r.text[:300]}")


def calibrate_refresh(token_endpoint: str, auth: str, pool: Pool, args: argparse.Namespace) -> float:
    """Refreshes per second, from a short run with a pool of its own that it must not use up
    (after one refresh checked on its own)."""
    body = "grant_type=refresh_token&refresh_token="
    size = CALIBRATION_POOL
    for attempt in range(3):
        tokens = pool.issue(size + (attempt == 0))
        if attempt == 0:
            probe_refresh(token_endpoint, auth, tokens.pop())
        r = run_wrk(token_endpoint, auth, args.threads, args.connections, CALIBRATION_SECONDS,
                    args.wrk_timeout, body, pool.files("calibration", tokens, args.threads))
        if r.non_200 and not r.pool_exhausted:
            raise BenchError(f"the calibration run of the refresh grant was refused: {r.faults()}")
        if not r.pool_exhausted:
            return r.statuses.get(200, 0) / (r.seconds or CALIBRATION_SECONDS)
        size *= 2
    raise BenchError(f"the calibration run of the refresh grant used up {size // 2} tokens in "
                     f"{CALIBRATION_SECONDS} s")


# A refresh token is sent this many times, each on a new connection, after the measured run.
REUSE_SENDS = 4


def refresh_reuse(token_endpoint: str, auth: str, refresh_token: str) -> int | None:
    """How many of REUSE_SENDS sends of one refresh token, each on a new connection (so that they
    reach the server's processes in turn), were answered 200: 1 where a rotation is seen by every
    process, more where a process keeps its tokens to itself. None if a send got no answer."""
    import requests

    answered = 0
    for _ in range(REUSE_SENDS):
        try:
            answered += post_refresh(token_endpoint, auth, refresh_token).status_code == 200
        except requests.RequestException:
            return None
    return answered


def measure_refresh(run: TokenRun, token_endpoint: str, auth: str, pool: Pool,
                    args: argparse.Namespace) -> None:
    """The refresh grant, each request with a refresh token of the pool never sent before. The
    warm-up's pool is sized from the rate of a calibration run, the measured run's from the higher
    of that rate and the warm-up's (a server may be faster once warm)."""
    body = "grant_type=refresh_token&refresh_token="
    try:
        rate = calibrate_refresh(token_endpoint, auth, pool, args)
        if args.warmup > 0:
            warm = pool_size(rate, args.warmup, args)
            w = run_wrk(token_endpoint, auth, args.threads, args.connections, args.warmup, args.wrk_timeout,
                        body, pool.files("warmup", pool.issue(warm), args.threads))
            # A warm-up that used up its pool ran at more than its size over its seconds.
            warm_rate = warm / args.warmup * args.pool_factor if w.pool_exhausted else \
                w.statuses.get(200, 0) / args.warmup
            rate = max(rate, warm_rate)
        run.refresh_rate = rate
        run.refresh_pool = pool_size(rate, args.duration, args)
        if run.refresh_pool > MAX_POOL:
            raise BenchError(f"a pool of {run.refresh_pool} refresh tokens is more than {MAX_POOL}")
        run.refresh = run_wrk(token_endpoint, auth, args.threads, args.connections, args.duration,
                              args.wrk_timeout, body,
                              pool.files("measured", pool.issue(run.refresh_pool), args.threads),
                              server_pid=run.pid, store=run.store)
        run.refresh_error = None
    except BenchError as exc:
        run.refresh_error = str(exc)
        return
    try:
        run.refresh_reuse = refresh_reuse(token_endpoint, auth, pool.issue(1)[0])
    except BenchError as exc:
        print(f"  the refresh-reuse probe could not run: {exc}", flush=True)


def measure_more(run: TokenRun, discovery: dict, auth: str, pool: Pool | None,
                 args: argparse.Namespace) -> None:
    """Introspection, then the refresh grant (after it: a refresh never touches the
    introspected token's family, but the order is the same on both servers)."""
    if pool is None:
        return
    if not args.skip_introspection:
        if "introspection_endpoint" in discovery:
            measure_introspection(run, discovery["introspection_endpoint"], auth, pool, args)
        else:
            run.introspection_error = "discovery document has no introspection_endpoint"
    if not args.skip_refresh:
        measure_refresh(run, discovery["token_endpoint"], auth, pool, args)


# --------------------------------------------------------------------------
# node-oidc-provider
# --------------------------------------------------------------------------


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if not npm:
        raise BenchError("npm not found")
    has_lock = (NODE_DIR / "package-lock.json").is_file()
    cmd = [npm, "ci" if has_lock else "install", "--no-audit", "--no-fund"]
    print(f"  installing node dependencies: {' '.join(cmd[1:])} (in bench/node)", flush=True)
    cp = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
    if cp.returncode != 0:
        raise BenchError(f"npm failed ({cp.returncode}): {cp.stderr.strip()[-500:]}")


# node-oidc-provider answers within two seconds of its start. On two machines its primary once
# printed its import warning and then nothing for two minutes (not reproduced by hand): a start
# that has not answered within NODE_START_SECONDS is stopped, where its threads wait is printed,
# and it is started once more.
NODE_START_SECONDS = 30
NODE_STARTS = 2


def node_name(args: argparse.Namespace) -> str:
    return "node-oidc-provider" + ("+Redis" if args.node_store == "redis" else "")


class NodeRedis:
    """node-oidc-provider's Redis (``--node-store redis``): its keys are under a prefix of this run's
    own, removed at the end; its process, where it is on this machine, is measured apart (``store``)."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.prefix = f"bench-node-{secrets.token_hex(4)}:"
        self.client = redis.Redis.from_url(url, socket_timeout=10)
        try:
            info = self.client.info("server")
        except redis.RedisError as exc:
            raise BenchError(f"node's Redis at {url} does not answer: {exc}") from exc
        self.store = local_store("Redis", url, info.get("process_id"), "redis")

    def clean(self) -> None:
        """Remove the run's keys (what a Redis gone meanwhile keeps is only said)."""
        import redis

        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key in self.client.scan_iter(match=self.prefix + "*", count=1000):
                    pipe.unlink(key)
                    if len(pipe) >= 1000:
                        pipe.execute()
                pipe.execute()
        except redis.RedisError as exc:
            print(f"  could not remove node's keys {self.prefix}* from {self.url}: {exc}", flush=True)
        finally:
            self.client.close()


def bench_node(procs: Processes, tmp: Path, args: argparse.Namespace) -> TokenRun:
    run = TokenRun(node_name(args))
    node = shutil.which("node")
    if not node:
        run.error = "node not found"
        return run
    proc = None
    node_redis = None
    try:
        ensure_node_modules()
        log = tmp / "node.log"
        env = dict(os.environ, BENCH_NODE_WORKERS=str(args.node_workers), NODE_ENV="production")
        if args.node_store == "redis":
            node_redis = NodeRedis(args.node_redis_url)
            env.update(BENCH_NODE_REDIS=node_redis.url, BENCH_NODE_REDIS_PREFIX=node_redis.prefix)
            run.store = node_redis.store
        pool = None
        if not (args.skip_refresh and args.skip_introspection):
            pool_file = tmp / "node-pool" / "all"
            pool_file.parent.mkdir()
            env.update(BENCH_NODE_POOL=str(pool_file), BENCH_NODE_ACCESS_TOKEN=secrets.token_urlsafe(32))
        for attempt in range(1, NODE_STARTS + 1):
            if "BENCH_NODE_POOL" in env:
                pool_file.write_text("")
                Path(f"{pool_file}.issued").unlink(missing_ok=True)
            port = free_port()
            with open(log, "wb") as fh:
                proc = procs.start("node", [node, "server.js", str(port)], cwd=NODE_DIR,
                                   env=dict(env, PORT=str(port)), stdout=fh,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                discovery = wait_http_ok(f"http://{HOST}:{port}/.well-known/openid-configuration",
                                         proc, log, timeout=NODE_START_SECONDS)
                break
            except BenchError as exc:
                threads = memory.where_threads_wait(proc.pid)
                procs.stop(proc)
                proc = None
                if attempt == NODE_STARTS:
                    raise BenchError(f"{exc}\n    its threads: {threads}") from exc
                print(f"  node-oidc-provider did not answer ({str(exc).splitlines()[0]}); its threads: "
                      f"{threads}; starting it again", flush=True)
        if "BENCH_NODE_POOL" in env:
            wait_node_issued(pool_file, proc, log, args.node_workers)

            def issue(count: int) -> list[str]:
                """Same values in every node worker (each keeps its own store, or the first issues them
                into the shared one); each sent once."""
                tokens = [secrets.token_urlsafe(32) for _ in range(count)]
                pool_file.write_text("".join(t + "\n" for t in tokens))
                Path(f"{pool_file}.issued").write_text("")
                os.kill(proc.pid, signal.SIGUSR2)
                wait_node_issued(pool_file, proc, log, args.node_workers)
                return tokens

            pool = Pool(pool_file.parent, issue, env["BENCH_NODE_ACCESS_TOKEN"])
        run.pid = proc.pid
        measure_tokens(run, discovery["token_endpoint"], NODE_CLIENT_ID, NODE_CLIENT_SECRET, args)
        measure_more(run, discovery, basic_auth(NODE_CLIENT_ID, NODE_CLIENT_SECRET), pool, args)
    except BenchError as exc:
        run.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - report, and let the idp part run
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        if proc is not None:
            procs.stop(proc)
        if node_redis is not None:
            node_redis.clean()
    return run


def wait_node_issued(pool_file: Path, proc: subprocess.Popen, log: Path, workers: int,
                     timeout: float = 300) -> None:
    """Wait until each node process has issued the pool file's tokens (a line each in POOL.issued)."""
    issued = Path(f"{pool_file}.issued")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"node exited with status {proc.returncode}; log tail:\n{tail(log)}")
        if issued.exists() and issued.read_text().count("\n") >= workers:
            return
        time.sleep(0.05)
    raise BenchError(f"node did not issue its refresh tokens within {timeout:.0f} s; log tail:\n{tail(log)}")


# --------------------------------------------------------------------------
# idp
# --------------------------------------------------------------------------


def idp_executable() -> str:
    candidate = Path(sys.executable).parent / "idp"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("idp")
    if found:
        return found
    raise BenchError("the `idp` command is not installed in this environment (pip install -e .)")


def idp_cli(env: dict[str, str], cwd: Path, *cli_args: str, timeout: float = 120) -> str:
    cmd = [idp_executable(), *cli_args]
    try:
        cp = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`idp {' '.join(cli_args)}` did not finish within {timeout:.0f}s") from exc
    if cp.returncode != 0:
        err = (cp.stderr.strip() or cp.stdout.strip()).splitlines()
        raise BenchError(f"`idp {' '.join(_redact(cli_args))}` exited with {cp.returncode}: "
                         f"{err[-1] if err else '(no output)'}")
    return cp.stdout


def _redact(cli_args: tuple[str, ...]) -> list[str]:
    out, hide = [], False
    for a in cli_args:
        out.append("***" if hide else a)
        hide = a == "--password"
    return out


def idp_json(env: dict[str, str], cwd: Path, *cli_args: str) -> Any:
    out = idp_cli(env, cwd, *cli_args)
    try:
        return json.loads(out)
    except ValueError:
        # tolerate log lines before the JSON document
        start = out.find("{")
        if start >= 0:
            try:
                return json.loads(out[start:])
            except ValueError:
                pass
        raise BenchError(f"`idp {cli_args[0]} {cli_args[1] if len(cli_args) > 1 else ''}` "
                         f"did not print JSON: {out[:300]!r}") from None


@dataclass
class IdpServer:
    proc: subprocess.Popen
    env: dict[str, str]
    issuer: str
    discovery: dict
    cwd: Path
    log: Path


def start_idp(procs: Processes, tmp: Path, args: argparse.Namespace,
              mail_port: int | None) -> IdpServer:
    port = free_port()
    issuer = f"http://{HOST}:{port}"
    workdir = tmp / "idp"
    workdir.mkdir()
    env = dict(os.environ)
    env.update({
        "IDP_DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        "IDP_ISSUER": issuer,
        "IDP_RATELIMIT_ENABLED": "false",
        "IDP_SECRET_KEY": secrets.token_hex(32),
        # gunicorn (>= 25.1) puts its control socket in $XDG_RUNTIME_DIR, else
        # in ~/.gunicorn/: keep this instance's socket in the temporary directory.
        "XDG_RUNTIME_DIR": str(tmp),
    })
    for key in ("IDP_REDIS_URL",):  # in-process state only; a fresh instance
        env.pop(key, None)
    if mail_port is not None:
        env.update({
            "IDP_MAIL_SERVER": HOST,
            "IDP_MAIL_PORT": str(mail_port),
            "IDP_MAIL_DEFAULT_SENDER": "idp-bench@example.com",
        })
    idp_cli(env, workdir, "db", "upgrade")
    log = tmp / "idp-serve.log"
    with open(log, "wb") as fh:
        # Passed only when given, so that `idp serve` keeps its own defaults.
        options = ["--threads", str(args.idp_threads)] if args.idp_threads else []
        options += ["--scheduling", args.scheduling] if args.scheduling else []
        proc = procs.start("idp", [idp_executable(), "serve", "--host", HOST, "--port", str(port),
                                   "--workers", str(args.workers), *options, "--server", args.server],
                           env=env, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    discovery = wait_http_ok(f"{issuer}/.well-known/openid-configuration", proc, log, timeout=60)
    if "token_endpoint" not in discovery:
        raise BenchError("discovery document has no token_endpoint")
    return IdpServer(proc, env, issuer, discovery, workdir, log)


def bench_idp_tokens(server: IdpServer, args: argparse.Namespace) -> TokenRun:
    run = TokenRun(f"idp ({args.workers} workers)", pid=server.proc.pid)
    if args.database_url and args.database_url.startswith("postgresql"):
        run.store = postgresql_store(args.database_url)
    try:
        creds = idp_json(server.env, server.cwd, "clients", "create", "--name", "bench",
                         "--grant-type", "client_credentials", "--json")
        client_id, secret = creds["client_id"], creds["client_secret"]
        token_endpoint = server.discovery["token_endpoint"]
        if urllib.parse.urlsplit(token_endpoint).hostname != HOST:
            raise BenchError(f"token_endpoint {token_endpoint} is not on {HOST}")
        measure_tokens(run, token_endpoint, client_id, secret, args)
        if not (args.skip_refresh and args.skip_introspection):
            pool, auth = idp_pool(server, args)
            measure_more(run, server.discovery, auth, pool, args)
    except BenchError as exc:
        run.error = str(exc)
    except (KeyError, TypeError) as exc:
        run.error = f"unexpected output of `idp clients create`: {exc!r}"
    except Exception as exc:  # noqa: BLE001 - report, and let the login part run
        run.error = f"{type(exc).__name__}: {exc}"
    return run


def idp_pool(server: IdpServer, args: argparse.Namespace) -> tuple[Pool, str]:
    """A client for the refresh grant and its pool: refresh tokens (each its own family, as a
    code exchange stores them) written into the database by bench/pool.py, and an access token;
    returns the pool and the client's Authorization header."""
    creds = idp_json(server.env, server.cwd, "clients", "create", "--name", "bench-refresh",
                     "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                     "--redirect-uri", f"http://{HOST}:9/callback", "--scope", "openid",
                     "--scope", "offline_access", "--json")
    directory = server.cwd / "pool"
    directory.mkdir()

    def seed(count: int, *extra: str) -> list[str]:
        out = directory / "all"
        # --client-id=VALUE: a random client id may start with "-".
        cmd = [sys.executable, str(BENCH_DIR / "pool.py"), f"--client-id={creds['client_id']}",
               "--count", str(count), "--out", str(out), *extra]
        try:
            cp = subprocess.run(cmd, env=server.env, cwd=server.cwd, capture_output=True, text=True,
                                timeout=600, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise BenchError("bench/pool.py did not finish within 600 s") from exc
        if cp.returncode != 0:
            raise BenchError(f"bench/pool.py exited with {cp.returncode}: {cp.stderr.strip()[-500:]}")
        return out.read_text().split()

    seed(1, "--access-token-out", str(directory / "access"))
    pool = Pool(directory, seed, (directory / "access").read_text().strip())
    return pool, basic_auth(creds["client_id"], creds["client_secret"])


# --------------------------------------------------------------------------
# mail sink
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# HTML step pages
# --------------------------------------------------------------------------

# The driver shares the machine's cores with the server, so it reads pages with a few regular
# expressions rather than an HTML parser: idp's step pages are its own, small and regular.
_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_TAG = re.compile(r"<(input|button)\b([^>]*)>", re.I)
_ATTR = re.compile(r"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_TOTP_SECRET = re.compile(r"""<[^>]*\bid=["']totp-secret["'][^>]*>(.*?)<""", re.S | re.I)
_ALERT = re.compile(r"""<(\w+)\b[^>]*\brole=["']alert["'][^>]*>(.*?)</\1>""", re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")


def _attrs(text: str) -> dict[str, str]:
    out = {}
    for m in _ATTR.finditer(text):
        value = m.group(2) if m.group(2) is not None else m.group(3) if m.group(3) is not None else m.group(4)
        out[m.group(1).lower()] = html.unescape(value or "")
    return out


class StepPage:
    """What the driver needs of a step page: its form#step (or consent form), the TOTP
    secret shown at enrolment and the texts of role=alert elements (read when asked for:
    a page that goes on has no use for them)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.form = _step_form(text)
        start = text.find("totp-secret")  # a regular expression only where the secret is shown
        secret = _TOTP_SECRET.search(text, max(0, text.rfind("<", 0, start))) if start >= 0 else None
        self.totp_secret = re.sub(r"\s+", "", html.unescape(secret.group(1))) if secret else None

    @property
    def alerts(self) -> list[str]:
        alerts = [" ".join(html.unescape(_TAGS.sub(" ", m.group(2))).split()) for m in _ALERT.finditer(self.text)]
        return [a for a in alerts if a]


def _form(attrs: dict, body: str) -> dict:
    inputs, buttons = [], []
    for tag in _TAG.finditer(body):
        (inputs if tag.group(1).lower() == "input" else buttons).append(_attrs(tag.group(2)))
    return {"action": attrs.get("action", ""), "method": (attrs.get("method") or "get").lower(),
            "inputs": inputs, "button_attrs": buttons}


def _step_form(text: str) -> dict | None:
    # idp's step pages write their form as <form id="step" ...>: found without scanning every form.
    at = text.find('<form id="step"')
    if at >= 0:
        m = _FORM.match(text, at)
        if m:
            return _form(_attrs(m.group(1)), m.group(2))
    form = None
    for m in _FORM.finditer(text):
        attrs = _attrs(m.group(1))
        if attrs.get("id") == "step":
            return _form(attrs, m.group(2))
        if form is None and 'name="decision"' in m.group(2):
            candidate = _form(attrs, m.group(2))
            if any(b.get("name") == "decision" for b in candidate["button_attrs"]):
                form = candidate  # a consent form
    return form


def read_page(text: str) -> StepPage:
    return StepPage(text)


# --------------------------------------------------------------------------
# logins
# --------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    password: str
    totp_secret: str | None = None
    last_totp_step: int = -1


def accepted_password(email: str, name: str) -> str:
    """A random password that the provider's password policy accepts for this address and name:
    drawn again while it is refused (a random "…123…" for account 123 contains its address)."""
    from idp.services import password_policy

    while True:
        password = secrets.token_urlsafe(18)
        if password_policy.check(password, None, email=email, name=name).ok:
            return password


@dataclass
class LoginClient:
    client_id: str
    client_secret: str
    redirect_uri: str
    authorization_endpoint: str
    token_endpoint: str


@dataclass
class Response:
    status: int
    url: str
    headers: dict[str, str]  # lower-case name -> value (the last one; Set-Cookie apart)
    text: str


class Browser:
    """One keep-alive HTTP/1.1 connection to the provider and a cookie jar (one host, so
    cookies are kept by name). It speaks just the HTTP the login needs on a plain socket, with
    no header parser of the standard library's: the driver runs on the server's cores."""

    def __init__(self, base: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(base)
        if parts.hostname != HOST:
            raise BenchError(f"{base} is not on {HOST}")
        self.port = parts.port or 80
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self._sock: socket.socket | None = None
        self._host = f"Host: {HOST}:{self.port}\r\n".encode()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def forget_cookies(self) -> None:
        self.cookies.clear()

    def request(self, method: str, url: str, body: dict | list | None = None,
                headers: dict[str, str] | None = None, cookies: bool = True) -> Response:
        """One request; ``cookies=False`` leaves the jar out, as for a request that the relying
        app's own server makes (the code exchange), which has none of the browser's cookies."""
        if url.startswith("/"):
            target = url
        else:
            parts = urllib.parse.urlsplit(url)
            if parts.hostname not in (None, HOST) or (parts.port or 80) != self.port:
                raise BenchError(f"request to a foreign host refused: {url}")
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"{method} {target} HTTP/1.1\r\n".encode(), self._host, b"Accept-Language: en\r\n"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}\r\n".encode())
        if cookies and self.cookies:
            head.append(("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n").encode())
        data = b""
        if body is not None:
            data = urllib.parse.urlencode(body).encode()
            head.append(b"Content-Type: application/x-www-form-urlencoded\r\n")
        if data or method == "POST":
            head.append(f"Content-Length: {len(data)}\r\n".encode())
        message = b"".join(head) + b"\r\n" + data
        for attempt in (1, 2):
            reused = self._sock is not None
            if self._sock is None:
                self._sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._sock.sendall(message)
                status, hdrs, cookies, payload = self._read()
                break
            except (ConnectionResetError, BrokenPipeError, _Closed):
                self.close()
                if not reused or attempt == 2:  # only a kept-alive connection the server closed
                    raise
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        for cookie in cookies:
            self._set_cookie(cookie)
        return Response(status, f"http://{HOST}:{self.port}{target}", hdrs, payload.decode("utf-8", "replace"))

    def _read(self) -> tuple[int, dict[str, str], list[str], bytes]:
        """One response: the status, the headers, the Set-Cookie values and the body."""
        sock, buf = self._sock, b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise _Closed() if not buf else BenchError("the connection closed inside a response's headers")
            buf += chunk
        lines = buf[:end].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise BenchError(f"not an HTTP/1 response: {lines[0][:80]!r}")
        status = int(rest[:3])
        hdrs: dict[str, str] = {}
        cookies: list[str] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            else:
                hdrs[name] = value
        rest_bytes = buf[end + 4:]
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            return status, hdrs, cookies, self._chunked(rest_bytes)
        length = int(hdrs.get("content-length", "0"))
        while len(rest_bytes) < length:
            chunk = sock.recv(max(65536, length - len(rest_bytes)))
            if not chunk:
                raise BenchError("the connection closed inside a response's body")
            rest_bytes += chunk
        return status, hdrs, cookies, rest_bytes[:length]

    def _chunked(self, buf: bytes) -> bytes:
        body = []
        while True:
            while b"\r\n" not in buf:
                buf += self._recv()
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += self._recv()
            if size == 0:  # no trailers expected; the final CRLF
                return b"".join(body)
            body.append(buf[:size])
            buf = buf[size + 2:]

    def _recv(self) -> bytes:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise BenchError("the connection closed inside a chunked body")
        return chunk

    def _set_cookie(self, header: str) -> None:
        pair, _, rest = header.partition(";")
        name, _, value = pair.strip().partition("=")
        attrs = rest.lower().replace(" ", "")
        if "max-age=0" in attrs or "expires=thu,01jan197000:00:00" in attrs:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value


class _Closed(Exception):
    """The server closed a kept-alive connection before answering."""


class LoginDriver:
    """Drives logins over HTTP, from /authorize to the token response, through the forms."""

    MAX_STEPS = 15
    MAX_REDIRECTS = 10
    trail: list[str]  # the visible fields of each step of the last login

    def __init__(self, client: LoginClient, mail: Sink, timeout: float) -> None:
        self.client = client
        self.mail = mail
        self.browser = Browser(client.authorization_endpoint, timeout)
        self._mail_since = mail.count()  # mails before this index are not for this login
        self.trail = []

    def close(self) -> None:
        self.browser.close()

    def login(self, account: Account) -> dict:
        """One complete login with an empty cookie jar (the connection is kept); returns the
        token response."""
        self.browser.forget_cookies()
        return self._login(account)

    def _login(self, account: Account) -> dict:
        import pyotp

        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uri,
            "scope": "openid email",
            "state": state,
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        url = self.client.authorization_endpoint + "?" + urllib.parse.urlencode(params)
        resp, url = self._follow(self.browser.request("GET", url))
        trail = []
        for _ in range(self.MAX_STEPS):
            if resp is None:  # redirected back to the client
                self.trail = trail + ["code exchange"]
                return self._finish(url, state, verifier)
            page = read_page(resp.text)
            form = page.form
            if page.totp_secret:
                account.totp_secret = page.totp_secret
            if form is None:
                raise BenchError(f"no form#step on {_path(url)} (HTTP {resp.status}"
                                 f"{'; alert: ' + '; '.join(page.alerts) if page.alerts else ''}); "
                                 f"steps so far: {' -> '.join(trail) or 'none'}")
            if resp.status >= 400:
                raise BenchError(f"step {_path(url)} answered {resp.status}"
                                 f"{': ' + '; '.join(page.alerts) if page.alerts else ''}; "
                                 f"steps so far: {' -> '.join(trail) or 'none'}")
            data: list[tuple[str, str]] = []
            names = []
            mail_mark = None
            for inp in form["inputs"]:
                name, kind = inp.get("name"), inp.get("type", "text").lower()
                if not name or "disabled" in inp:
                    continue
                if kind != "hidden" and "hidden" not in inp:
                    names.append(name)
                if name == "email":
                    data.append((name, account.email))
                elif name in ("password", "password_confirm"):
                    data.append((name, account.password))
                elif name == "email_code":
                    mail_mark = name
                elif name == "totp_code":
                    if not account.totp_secret:
                        raise BenchError(f"{_path(url)} asks for a TOTP code but no #totp-secret "
                                         f"was shown to this account")
                    totp = pyotp.TOTP(account.totp_secret)
                    step = int(time.time()) // totp.interval
                    if step <= account.last_totp_step:  # never replay a code
                        time.sleep(totp.interval - time.time() % totp.interval + 0.05)
                        step = int(time.time()) // totp.interval
                    account.last_totp_step = step
                    data.append((name, totp.at(step * totp.interval)))
                elif kind == "checkbox":
                    if name.startswith("accept_") or "checked" in inp:
                        data.append((name, inp.get("value") or "on"))
                elif kind == "radio":
                    if "checked" in inp:
                        data.append((name, inp.get("value", "on")))
                elif kind in ("submit", "button", "image", "reset", "file"):
                    continue
                else:
                    data.append((name, inp.get("value", "")))
            if mail_mark:
                # The code was mailed when this step was reached; take the
                # newest code sent to this address since the previous step.
                try:
                    code = self.mail.code_for(account.email, since=self._mail_since, timeout=30)
                except AssertionError as exc:
                    raise BenchError(str(exc)) from None
                data.append(("email_code", code))
            buttons = [b for b in form["button_attrs"] if b.get("type", "submit").lower() == "submit"]
            chosen = next((b for b in buttons if b.get("name") == "decision"
                           and b.get("value") == "allow"), None)
            if chosen is None:
                chosen = next((b for b in buttons if b.get("name")), None)
            if chosen is not None and chosen.get("name"):
                data.append((chosen["name"], chosen.get("value", "")))
                names.append(f"{chosen['name']}={chosen.get('value', '')}")
            trail.append("+".join(names) or _path(url))
            action = urllib.parse.urljoin(url, form["action"] or url)
            self._mail_since = self.mail.count()
            if form["method"] == "post":
                raw = self.browser.request("POST", action, body=data, headers={"Referer": url})
            else:
                sep = "&" if urllib.parse.urlsplit(action).query else "?"
                raw = self.browser.request("GET", action + sep + urllib.parse.urlencode(data))
            resp, url = self._follow(raw)
        raise BenchError(f"login did not finish within {self.MAX_STEPS} steps: {' -> '.join(trail)}")

    def _follow(self, resp: Response):
        """Follow redirects by hand; stop (None, location) at the client's redirect_uri."""
        for _ in range(self.MAX_REDIRECTS):
            if resp.status not in (301, 302, 303, 307, 308):
                return resp, resp.url
            location = urllib.parse.urljoin(resp.url, resp.headers.get("location", ""))
            if location.startswith(self.client.redirect_uri):
                return None, location
            if urllib.parse.urlsplit(location).hostname != HOST:
                raise BenchError(f"redirect to a foreign host refused: {location}")
            resp = self.browser.request("GET", location)
        raise BenchError(f"more than {self.MAX_REDIRECTS} redirects from {resp.url}")

    def _finish(self, location: str, state: str, verifier: str) -> dict:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        if "error" in query:
            raise BenchError(f"authorization error: {query.get('error')} "
                             f"{query.get('error_description', '')}".strip())
        if query.get("state") != state:
            raise BenchError("state mismatch in the authorization response")
        if "code" not in query:
            raise BenchError(f"no code in the authorization response: {location}")
        r = self.browser.request("POST", self.client.token_endpoint, body={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": self.client.redirect_uri,
            "code_verifier": verifier,
        }, headers={"Authorization": basic_auth(self.client.client_id, self.client.client_secret),
                    "Accept": "application/json"}, cookies=False)
        if r.status != 200:
            raise BenchError(f"code exchange answered {r.status}: {r.text[:300]}")
        try:
            body = json.loads(r.text)
        except ValueError:
            raise BenchError(f"code exchange answered no JSON: {r.text[:300]}") from None
        if "access_token" not in body:
            raise BenchError(f"code exchange returned no access_token: {r.text[:300]}")
        return body


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or "/"


# Runs many `idp` commands in one interpreter (Flask's CLI runner), so that the set-up does not
# start Python and import the provider once per account.
_CLI_MANY = """
import json, sys
from idp import create_app
from idp.cli import cli
runner = create_app().test_cli_runner()
for argv in json.load(sys.stdin):
    result = runner.invoke(cli, args=argv)
    if result.exit_code != 0:
        sys.exit(f"idp {argv[0]} {argv[1]} exited with {result.exit_code}: {result.output.strip()[-300:]}")
"""


def idp_cli_many(env: dict[str, str], cwd: Path, commands: list[list[str]], timeout: float = 600) -> None:
    try:
        cp = subprocess.run([sys.executable, "-c", _CLI_MANY], input=json.dumps(commands), env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{len(commands)} idp commands did not finish within {timeout:.0f}s") from exc
    if cp.returncode != 0:
        err = (cp.stderr.strip() or cp.stdout.strip()).splitlines()
        raise BenchError(err[-1] if err else f"idp commands exited with {cp.returncode}")


def serve_default(option: str):
    """The default of an option of `idp serve` (None if it has none, or idp is not importable)."""
    try:
        from idp.cli.serve import serve
    except Exception:  # noqa: BLE001 - reported by the caller
        return None
    return next((param.default for param in serve.params if param.name == option), None)


def serve_threads() -> tuple[int, str]:
    """Threads per worker of `idp serve` (its --threads default), and where that came from."""
    default = serve_default("threads")
    if isinstance(default, int):
        return default, "idp serve --threads default"
    return 1, "idp serve has no --threads default: one per worker"


@dataclass
class LoginResult:
    logins: int = 0
    seconds: float = 0.0
    durations: list[float] = field(default_factory=list)
    concurrency: int = 1
    setup_seconds: float = 0.0
    first_trail: list[str] = field(default_factory=list)
    trail: list[str] = field(default_factory=list)
    driver_cpu: float = 0.0  # CPU seconds of this process (the driver) in the measured phase
    server_cpu: float = 0.0  # CPU seconds of the server's processes in the measured phase
    server_system: float = 0.0  # of which in the kernel
    error: str | None = None


def _in_parallel(count: int, items: list, call, timeout: float) -> list:
    """``call(item)`` for every item, ``count`` at a time, in order; the first error stops."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(call, item) for item in items]
        out = []
        try:
            for fut in futures:
                out.append(fut.result(timeout=timeout))
        finally:
            for fut in futures:
                fut.cancel()
        return out


def bench_logins(server: IdpServer, mail: Sink, args: argparse.Namespace) -> LoginResult:
    res = LoginResult(concurrency=args.login_concurrency)
    n = args.logins
    drivers: list[LoginDriver] = []
    local = threading.local()
    try:
        import pyotp  # noqa: F401

        d = server.discovery
        for key in ("authorization_endpoint", "token_endpoint"):
            if key not in d:
                raise BenchError(f"discovery document has no {key}")
        # Nothing listens at the redirect URI: the driver stops at the redirect.
        redirect_uri = f"http://{HOST}:{free_port()}/callback"
        creds = idp_json(server.env, server.cwd, "clients", "create", "--name", "bench-login",
                         "--redirect-uri", redirect_uri, "--grant-type", "authorization_code",
                         "--scope", "openid", "--scope", "email", "--first-party", "--json")
        client = LoginClient(creds["client_id"], creds["client_secret"], redirect_uri,
                             d["authorization_endpoint"], d["token_endpoint"])
        run_tag = secrets.token_hex(3)
        names = [f"Bench {i}" for i in range(n)]
        emails = [f"bench-{run_tag}-{i}@example.com" for i in range(n)]
        accounts = [Account(email, accepted_password(email, name)) for email, name in zip(emails, names)]
        t0 = time.monotonic()

        idp_cli_many(server.env, server.cwd, [
            # --password=VALUE: a random password may start with "-".
            ["users", "create", f"--email={acct.email}", f"--password={acct.password}", "--name", name, "--json"]
            for acct, name in zip(accounts, names)])

        def driver() -> LoginDriver:
            if not hasattr(local, "driver"):  # one connection per thread, kept for every login
                local.driver = LoginDriver(client, mail, timeout=args.http_timeout)
                drivers.append(local.driver)
            return local.driver

        def first(acct: Account) -> list[str]:  # e-mail code + TOTP enrolment
            try:
                driver().login(acct)
            except BenchError as exc:
                raise BenchError(f"first login of {acct.email}: {exc}") from None
            if not acct.totp_secret:
                raise BenchError(f"first login of {acct.email} finished without TOTP enrolment "
                                 f"(no #totp-secret shown)")
            return driver().trail

        res.first_trail = _in_parallel(min(4, args.login_concurrency), accounts, first,
                                       timeout=args.http_timeout * 20)[0] if accounts else []
        res.setup_seconds = time.monotonic() - t0
        # A TOTP code may be accepted once per time step: make sure the
        # measured logins are in a later step than every set-up login, so that
        # waiting for a fresh step never falls inside the timed region.
        interval = 30
        last_step = max(a.last_totp_step for a in accounts)
        wait = (last_step + 1) * interval - time.time() + 0.05
        if 0 < wait <= interval + 1:
            time.sleep(wait)

        def one(acct: Account) -> float:
            start = time.perf_counter()
            try:
                driver().login(acct)
            except BenchError as exc:
                raise BenchError(f"login of {acct.email}: {exc}") from None
            elapsed = time.perf_counter() - start
            res.trail = res.trail or driver().trail
            return elapsed

        for drv in drivers:  # fresh connections for the measured phase, made in it
            drv.close()
        local = threading.local()
        start, cpu_start = time.perf_counter(), time.process_time()
        server_start = memory.cpu_seconds(server.proc.pid)
        try:
            res.durations = _in_parallel(args.login_concurrency, accounts, one, timeout=args.http_timeout * 20)
        except concurrent.futures.TimeoutError:
            raise BenchError("a login took too long") from None
        res.seconds = time.perf_counter() - start
        res.driver_cpu = time.process_time() - cpu_start
        user, system = memory.cpu_seconds(server.proc.pid)
        res.server_cpu = user + system - sum(server_start)
        res.server_system = system - server_start[1]
        res.logins = len(res.durations)
    except BenchError as exc:
        res.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - the login flow may be unfinished
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        for drv in drivers:
            drv.close()
    return res


# --------------------------------------------------------------------------
# Argon2id
# --------------------------------------------------------------------------


@dataclass
class ArgonResult:
    source: str = ""
    params: str = ""
    single_per_s: float | None = None
    parallel_per_s: float | None = None
    parallel_threads: int = 1
    hashes: int = 0
    error: str | None = None


def project_hasher():
    """The project's PasswordHasher if idp.services.passwords exposes one."""
    from argon2 import PasswordHasher

    try:
        sys.path.insert(0, str(REPO_ROOT))
        import importlib

        mod = importlib.import_module("idp.services.passwords")
    except Exception as exc:  # noqa: BLE001
        return PasswordHasher(), f"argon2-cffi defaults (idp.services.passwords not importable: " \
                                 f"{type(exc).__name__})"
    finally:
        if sys.path and sys.path[0] == str(REPO_ROOT):
            sys.path.pop(0)
    for name in ("HASHER", "password_hasher"):
        obj = getattr(mod, name, None)
        if callable(obj) and not isinstance(obj, PasswordHasher):
            try:
                obj = obj()
            except TypeError:
                obj = None
        if isinstance(obj, PasswordHasher):
            return obj, f"idp.services.passwords.{name}"
    return PasswordHasher(), "argon2-cffi defaults (idp.services.passwords exposes no HASHER/password_hasher)"


def bench_argon2(args: argparse.Namespace) -> ArgonResult:
    """Verifications per second (what a login does) in one thread, then in as many threads as
    logins are driven at a time: argon2-cffi releases the GIL, so threads hash side by side."""
    res = ArgonResult()
    try:
        hasher, res.source = project_hasher()
        res.params = (f"type={hasher.type.name}, time_cost={hasher.time_cost}, "
                      f"memory_cost={hasher.memory_cost} KiB, parallelism={hasher.parallelism}")
        password = "correct horse battery staple"
        stored = hasher.hash(password)  # warm-up, not counted
        budget = args.argon2_seconds

        count, start = 0, time.perf_counter()
        while count < args.argon2_hashes and time.perf_counter() - start < budget:
            hasher.verify(stored, password)
            count += 1
        res.single_per_s = count / (time.perf_counter() - start)
        res.hashes = count

        threads = args.login_concurrency
        res.parallel_threads = threads
        if threads > 1:
            per_thread = max(1, args.argon2_hashes // threads)
            deadline = time.perf_counter() + budget
            counts = [0] * threads
            ready = threading.Barrier(threads + 1)

            def work(i: int) -> None:
                ready.wait()
                while counts[i] < per_thread and time.perf_counter() < deadline:
                    hasher.verify(stored, password)
                    counts[i] += 1

            workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
            for w in workers:
                w.start()
            ready.wait()
            start = time.perf_counter()
            for w in workers:
                w.join(budget + 30)
            res.parallel_per_s = sum(counts) / (time.perf_counter() - start)
            res.hashes += sum(counts)
    except Exception as exc:  # noqa: BLE001
        res.error = f"{type(exc).__name__}: {exc}"
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _header(rate: str) -> None:
    print(f"{'server':<24}{rate:>10}{'p50':>11}{'p99':>11}{'CPU/req':>11}{'ctx/req':>9}{'non-200':>9}{'sock.err':>9}  note")


def _row(name: str, r: WrkResult, note: str) -> dict:
    """Print one server's line of a wrk table; return its figures for the JSON."""
    if r.store_cpu_us_per_request is not None:
        note += f"; its {r.store_name} {r.store_cpu_us_per_request:.0f} µs CPU/req more"
    print(f"{name:<24}{fmt(r.requests_per_s):>10}{fmt(r.p50_ms, '.2f', ' ms'):>11}"
          f"{fmt(r.p99_ms, '.2f', ' ms'):>11}{fmt(r.cpu_us_per_request, '.0f', ' µs'):>11}"
          f"{fmt(r.switches_per_request, '.1f'):>9}{r.non_200:>9}{r.socket_error_total:>9}  {note}")
    return {"p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "cpu_us_per_request": r.cpu_us_per_request,
            "store": r.store_name, "store_cpu_us_per_request": r.store_cpu_us_per_request,
            "context_switches_per_request": r.switches_per_request,
            "requests": r.requests, "non_200": r.non_200, "statuses": r.statuses,
            "socket_errors": r.socket_errors, "valid": r.valid}


def report_tokens(runs: list[TokenRun], args: argparse.Namespace) -> dict:
    print()
    print(f"== client_credentials tokens: wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s --latency (after {args.warmup}s warm-up) ==")
    _header("tokens/s")
    out = {}
    for run in runs:
        r = run.result
        if r is None:
            print(f"{run.name:<24}{'unavailable':>10}  ({run.error})")
            out[run.name] = {"error": run.error}
            continue
        note = "ok" if r.valid else "INVALID: " + r.faults()
        out[run.name] = {"tokens_per_s": r.requests_per_s, **_row(run.name, r, note), "token_format": run.token_format}
    for run in runs:
        if run.token_format:
            print(f"  {run.name} access token: {run.token_format}")
    ratio, cpu = print_ratio("tokens/s", runs[0].result, runs[1].result)
    if ratio is not None:
        out["ratio_idp_node"] = ratio
    if cpu is not None:
        out["ratio_idp_node_cpu_per_request"] = cpu
    print("memory after each run (RSS counts shared pages in every process, PSS once: PSS adds up):")
    for run in runs:
        if run.memory:
            memory.print_tree(run.memory, label=run.name)
            out.setdefault(run.name, {})["memory"] = memory.as_json(run.memory)
    return out


def print_ratio(what: str, idp: WrkResult | None, node: WrkResult | None) -> tuple[float | None, float | None]:
    """Print idp's rate over node's, their latencies' and their CPU per request's ratios; returns
    (rate ratio, CPU ratio), None where a run has no figure or is invalid (never compared)."""
    if not (idp and node and idp.requests_per_s and node.requests_per_s):
        print(f"ratio idp/node {what}: unavailable")
        return None, None
    invalid = [f"{name} {r.faults()}" for name, r in (("idp", idp), ("node", node)) if not r.valid]
    if invalid:
        print(f"ratio idp/node {what}: none, invalid run ({'; '.join(invalid)})")
        return None, None
    ratio = idp.requests_per_s / node.requests_per_s
    print(f"ratio idp/node {what}: {ratio:.3f}")
    if idp.p50_ms and node.p50_ms and idp.p99_ms and node.p99_ms:
        print(f"ratio idp/node latency: p50 {idp.p50_ms / node.p50_ms:.2f}x, "
              f"p99 {idp.p99_ms / node.p99_ms:.2f}x")
    cpu = None
    if idp.cpu_us_per_request and node.cpu_us_per_request:
        cpu = idp.cpu_us_per_request / node.cpu_us_per_request
        print(f"ratio idp/node CPU/req: {cpu:.2f}x (above 1 = idp spends more CPU per request)")
    if idp.switches_per_request is not None and node.switches_per_request is not None:
        print(f"context switches per request: idp {idp.switches_per_request:.1f}, node {node.switches_per_request:.1f}")
    return ratio, cpu


def report_more(runs: list[TokenRun], args: argparse.Namespace) -> dict:
    """The refresh-grant and introspection benches: a table each, and the ratios idp/node."""
    out: dict[str, Any] = {}
    for key, title in (("introspection", "introspection of a valid access token (client_secret_basic)"),
                       ("refresh", "refresh grant, each request rotating a pre-issued refresh token")):
        if getattr(args, f"skip_{key}"):
            continue
        print()
        print(f"== {title}: wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
              f"(after {args.warmup}s warm-up) ==")
        _header("req/s")
        for run in runs:
            r, error = getattr(run, key), getattr(run, f"{key}_error")
            if r is None:
                print(f"{run.name:<24}{'unavailable':>10}  ({run.error or error})")
                out.setdefault(run.name, {})[key] = {"error": run.error or error}
                continue
            note = "ok" if r.valid else "INVALID: " + r.faults()
            if key == "refresh":
                note += (f"; pool {run.refresh_pool} ({run.refresh_rate:.0f}/s x {args.duration} s "
                         f"x {args.pool_factor:g})")
            out.setdefault(run.name, {})[key] = {"requests_per_s": r.requests_per_s, **_row(run.name, r, note),
                                                 "seconds": r.seconds, "pool_exhausted": r.pool_exhausted}
            if key == "refresh":
                out[run.name][key].update(pool_sized_for_per_s=run.refresh_rate, pool=run.refresh_pool,
                                          reuse_answered=run.refresh_reuse, reuse_sent=REUSE_SENDS)
        if key == "refresh":
            reuse = [f"{run.name} {'no answer' if run.refresh_reuse is None else run.refresh_reuse}"
                     for run in runs if run.refresh is not None]
            if reuse:
                print(f"one refresh token sent {REUSE_SENDS} times, each on a new connection, rotated by: "
                      + ", ".join(reuse) + " (1 = once for the whole server)")
        ratio, cpu = print_ratio(f"{key} req/s", getattr(runs[0], key), getattr(runs[1], key))
        if ratio is not None:
            out[f"ratio_idp_node_{key}"] = ratio
        if cpu is not None:
            out[f"ratio_idp_node_{key}_cpu_per_request"] = cpu
    return out


def report_logins(res: LoginResult | None, argon: ArgonResult | None, args: argparse.Namespace) -> dict:
    print()
    print("== interactive logins (authorize + e-mail + password + TOTP + code exchange) ==")
    out: dict[str, Any] = {"login_concurrency": args.login_concurrency,
                           "login_concurrency_source": args.login_concurrency_source}
    print(f"concurrency: {args.login_concurrency} logins at a time and as many Argon2id threads "
          f"({args.login_concurrency_source})")
    rate = None
    if res is None:
        print("logins/s: unavailable (skipped)")
    elif res.error:
        print(f"logins/s: unavailable ({res.error})")
        out["logins_error"] = res.error
    elif res.logins and res.seconds > 0:
        rate = res.logins / res.seconds
        d = sorted(res.durations)
        p50 = statistics.median(d)
        p99 = d[min(len(d) - 1, max(0, int(round(0.99 * len(d))) - 1))]
        print(f"logins/s: {rate:.2f}  ({res.logins} logins, {res.concurrency} at a time, "
              f"{res.seconds:.2f} s; per login p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, "
              f"max {d[-1] * 1e3:.0f} ms)")
        print(f"  driver CPU (this process, all its threads; on the server's cores): "
              f"{res.driver_cpu / res.logins * 1e3:.1f} ms per login")
        busy = (res.server_cpu + res.driver_cpu) / (res.seconds * (os.cpu_count() or 1))
        print(f"  server CPU (every process of idp serve, Argon2id included): "
              f"{res.server_cpu / res.logins * 1e3:.1f} ms per login "
              f"({res.server_system / res.logins * 1e3:.1f} ms of it in the kernel); server and driver kept "
              f"{busy:.0%} of the machine's {os.cpu_count()} cores busy")
        print(f"  set-up (create accounts + first logins with e-mail code and TOTP enrolment): "
              f"{res.setup_seconds:.1f} s, not counted")
        if res.first_trail:
            print(f"  first login: {' -> '.join(res.first_trail)}")
        if res.trail:
            print(f"  measured login: {' -> '.join(res.trail)}")
        out.update({"logins_per_s": rate, "logins": res.logins, "concurrency": res.concurrency,
                    "login_p50_ms": p50 * 1e3, "login_p99_ms": p99 * 1e3, "login_max_ms": d[-1] * 1e3,
                    "driver_cpu_ms_per_login": res.driver_cpu / res.logins * 1e3,
                    "server_cpu_ms_per_login": res.server_cpu / res.logins * 1e3})
    else:
        print("logins/s: unavailable (no login measured)")
    ceiling = None
    if argon is None:
        print("argon2id hashes/s: skipped")
    elif argon.error:
        print(f"argon2id hashes/s: unavailable ({argon.error})")
    else:
        ceiling = argon.parallel_per_s if argon.parallel_per_s is not None else argon.single_per_s
        par = (f", {argon.parallel_per_s:.1f}/s with {argon.parallel_threads} threads"
               if argon.parallel_per_s is not None else "")
        print(f"argon2id hashes/s: {argon.single_per_s:.1f}/s in one thread{par} "
              f"({argon.hashes} verifications)")
        print(f"  parameters: {argon.params}; from {argon.source}")
        out.update({"argon2_per_s_single": argon.single_per_s,
                    "argon2_per_s_parallel": argon.parallel_per_s,
                    "argon2_threads": argon.parallel_threads, "argon2_params": argon.params})
    if rate and ceiling:
        ratio = rate / ceiling
        print(f"ratio logins/s / argon2id hashes/s at {args.login_concurrency} threads: {ratio:.3f} "
              f"(goal >= 0.7)")
        out["ratio_logins_argon2"] = ratio
    else:
        print("ratio logins/s / argon2id hashes/s: unavailable")
    return out


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def clean_up(procs: Processes, mail: Sink | None, tmp: Path, keep_tmp: bool) -> None:
    """Stop every server and the SMTP sink; remove the temporary directory unless asked to keep it."""
    procs.stop_all()
    if mail is not None:
        mail.stop()
    if keep_tmp:
        print(f"temporary files kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="idp token and login throughput, next to node-oidc-provider.")
    p.add_argument("--duration", type=int, default=10, help="seconds of measured load per server (10)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured warm-up load (3)")
    p.add_argument("--wrk-timeout", type=int, default=5, help="wrk per-request timeout, seconds (5)")
    p.add_argument("--workers", type=int, default=2, help="idp serve --workers (2)")
    p.add_argument("--idp-threads", type=int, default=None, metavar="N",
                   help="idp serve --threads: threads per worker (default: idp serve's own)")
    p.add_argument("--server", choices=["granian", "gunicorn"], default="granian",
                   help="idp serve --server: the WSGI server (granian)")
    p.add_argument("--scheduling", choices=["batch", "normal"], default=None,
                   help="idp serve --scheduling: the kernel's scheduling policy (default: idp serve's own)")
    p.add_argument("--node-workers", type=int, default=None,
                   help="node-oidc-provider processes (node:cluster); default: as many as --workers")
    p.add_argument("--node-store", choices=["memory", "redis"], default="memory",
                   help="where node-oidc-provider keeps its tokens: its in-memory adapter, a store of "
                        "each process (memory, the default), or Redis, shared by its processes as a "
                        "deployment of several needs (bench/node/redis_adapter.js)")
    p.add_argument("--node-redis-url", metavar="URL", default="redis://127.0.0.1:6379/0",
                   help="the Redis of --node-store redis (redis://127.0.0.1:6379/0); the run's keys "
                        "are under a prefix of its own and removed at the end")
    p.add_argument("--database-url", metavar="URL",
                   help="run idp on this database (e.g. postgresql+psycopg://postgres@127.0.0.1/idp_bench, "
                        "empty or an idp database: the bench adds its clients and tokens) instead of a "
                        "fresh SQLite file in the temporary directory")
    p.add_argument("--pool-factor", type=float, default=3.0,
                   help="refresh tokens pre-issued per server: the measured refresh rate (of a "
                        "calibration run, then of the warm-up) x the seconds of the run x this factor (3)")
    p.add_argument("--skip-refresh", action="store_true", help="leave out the refresh-grant bench")
    p.add_argument("--skip-introspection", action="store_true", help="leave out the introspection bench")
    p.add_argument("--logins", type=int, default=160, help="accounts / measured logins (160; 0 skips)")
    p.add_argument("--login-concurrency", type=int, default=None,
                   help="logins driven at the same time, and Argon2id threads measured "
                        "(default: --workers x the threads per worker of idp serve)")
    p.add_argument("--http-timeout", type=float, default=30.0, help="per HTTP request in the login part")
    p.add_argument("--argon2-hashes", type=int, default=100, help="max Argon2id hashes per measurement (100)")
    p.add_argument("--argon2-seconds", type=float, default=20.0, help="time cap per Argon2id measurement")
    p.add_argument("--skip-node", action="store_true", help="do not run node-oidc-provider")
    p.add_argument("--skip-idp", action="store_true", help="do not run idp (tokens and logins)")
    p.add_argument("--skip-argon2", action="store_true")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, db)")
    args = p.parse_args(argv)
    if args.node_workers is None:
        args.node_workers = args.workers
    if not 1 <= args.pool_factor <= 10:
        p.error("--pool-factor must be between 1 and 10")
    if args.idp_threads is not None and not 1 <= args.idp_threads <= 64:
        p.error("--idp-threads must be between 1 and 64")
    if args.login_concurrency is None:
        threads, source = (args.idp_threads, "--idp-threads") if args.idp_threads else serve_threads()
        args.login_concurrency = args.workers * threads
        args.login_concurrency_source = f"{args.workers} workers x {threads} threads, {source}"
    else:
        args.login_concurrency_source = "--login-concurrency"
    for name in ("duration", "connections", "threads", "workers", "node_workers", "login_concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads > args.connections:
        p.error("--threads must not exceed --connections")
    if not (0 <= args.warmup <= 120 and args.duration <= 600 and args.logins <= 500
            and args.argon2_hashes <= 1000 and 0 <= args.argon2_seconds <= 120):
        p.error("bounds: --warmup <= 120, --duration <= 600, --logins <= 500, "
                "--argon2-hashes <= 1000, --argon2-seconds <= 120")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGHUP, _raise_keyboard_interrupt)
    procs = Processes()
    mail = Sink()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    node_run = TokenRun(node_name(args), error="skipped")
    idp_run = TokenRun(f"idp ({args.workers} workers)", error="skipped")
    logins: LoginResult | None = None
    argon: ArgonResult | None = None
    interrupted = False
    print(f"idp benchmark: {os.cpu_count()} CPUs, wrk {_wrk_version()}, node {_node_version()}, "
          f"idp on {_database(args)}")
    threads = args.idp_threads or f"{serve_threads()[0]} (its default)"
    scheduling = args.scheduling or f"{serve_default('scheduling')} (its default)"
    print(f"idp serve --workers {args.workers} --threads {threads} --server {args.server} "
          f"--scheduling {scheduling}; "
          f"{node_name(args)} {args.node_workers} process(es), "
          + ("tokens in Redis, shared" if args.node_store == "redis" else "tokens in each process's memory"))
    try:
        if not args.skip_node:
            print("-- node-oidc-provider: starting and loading", flush=True)
            node_run = bench_node(procs, tmp, args)
        if not args.skip_idp:
            print("-- idp: fresh instance, db upgrade, serve", flush=True)
            server = None
            try:
                mail_port = mail.start().port if args.logins > 0 else None
                server = start_idp(procs, tmp, args, mail_port)
            except BenchError as exc:
                idp_run.error = str(exc)
                if args.logins > 0:
                    logins = LoginResult(error=f"idp did not start: {exc.args[0].splitlines()[0]}")
            except Exception as exc:  # noqa: BLE001 - e.g. aiosmtpd failing to bind
                idp_run.error = f"{type(exc).__name__}: {exc}"
                if args.logins > 0:
                    logins = LoginResult(error=idp_run.error)
            if server is not None:
                print("-- idp: client_credentials, introspection and refresh load", flush=True)
                idp_run = bench_idp_tokens(server, args)
                if args.logins > 0:
                    print(f"-- idp: {args.logins} accounts, first logins, then measured logins",
                          flush=True)
                    logins = bench_logins(server, mail, args)
                    if not args.skip_argon2:  # right after the logins, on the same machine load
                        print("-- argon2id hashing", flush=True)
                        argon = bench_argon2(args)
                procs.stop(server.proc)
        if not args.skip_argon2 and argon is None:
            print("-- argon2id hashing", flush=True)
            argon = bench_argon2(args)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping servers", file=sys.stderr)
    finally:
        clean_up(procs, mail, tmp, args.keep_tmp)
    if interrupted:
        return 130
    figures = report_tokens([idp_run, node_run], args)
    for name, more in report_more([idp_run, node_run], args).items():
        if isinstance(more, dict):
            figures.setdefault(name, {}).update(more)
        else:
            figures[name] = more
    figures.update(report_logins(logins, argon, args))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


def _database(args: argparse.Namespace) -> str:
    """The database idp runs on, without its password."""
    if not args.database_url:
        return "SQLite (a fresh file)"
    parts = urllib.parse.urlsplit(args.database_url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        return "(not installed)"
    cp = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    m = re.search(r"wrk\s+(\S+)", cp.stdout + cp.stderr)
    return m.group(1) if m else "?"


def _node_version() -> str:
    node = shutil.which("node")
    if not node:
        return "(not installed)"
    cp = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    return cp.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
