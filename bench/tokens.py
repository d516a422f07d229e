#!/usr/bin/env python3
"""Token and login throughput of idp, next to node-oidc-provider.

Run from the repository root with the virtualenv active:

    python bench/tokens.py [--duration 10] [--connections 16] [--threads 2]
                           [--warmup 3] [--workers 2] [--logins 20]

Parts (see bench/README.md for what every figure means):

1. client_credentials tokens/s, p50/p99 latency and non-2xx count, measured
   with wrk against `idp serve` and against node-oidc-provider
   (bench/node/server.js), then the ratio idp/node and the resident memory of
   every server process after its run;
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
NODE_DIR = BENCH_DIR / "node"
LUA_SCRIPT = BENCH_DIR / "post_token.lua"
HOST = "127.0.0.1"  # the only address this benchmark ever talks to

# The test suite's SMTP sink and form parser (tests/ is a package at the repository root).
sys.path.insert(0, str(REPO_ROOT))
from tests.forms import FormParser, parse  # noqa: E402
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


# RSS and PSS of every process of a server's tree: bench/memory.py.
import memory  # noqa: E402


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
    raw: str = ""

    @property
    def non_200(self) -> int:
        if self.statuses:
            return sum(n for status, n in self.statuses.items() if status != 200)
        return self.non_2xx_3xx

    @property
    def socket_error_total(self) -> int:
        return sum(v for k, v in self.socket_errors.items() if k != "status")

    @property
    def clean(self) -> bool:
        return self.requests_per_s is not None and self.non_200 == 0 and self.socket_error_total == 0


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
    m = re.search(r"^bench:errors connect=(\d+) read=(\d+) write=(\d+) status=(\d+) timeout=(\d+)$",
                  output, re.M)
    if m:
        res.socket_errors = dict(zip(("connect", "read", "write", "status", "timeout"),
                                     map(int, m.groups())))
    return res


def run_wrk(url: str, authorization: str, threads: int, connections: int, seconds: int,
            timeout_s: int) -> WrkResult:
    wrk = shutil.which("wrk")
    if not wrk:
        raise BenchError("wrk not found (apt-get install -y wrk)")
    if urllib.parse.urlsplit(url).hostname != HOST:
        raise BenchError(f"refusing to send load to {url}: only {HOST} is allowed")
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
           "--latency", "-s", str(LUA_SCRIPT), url, "--", authorization]
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + timeout_s + 30}s") from exc
    if cp.returncode != 0:
        raise BenchError(f"wrk exited with {cp.returncode}: {cp.stderr.strip() or cp.stdout.strip()}")
    res = parse_wrk(cp.stdout + cp.stderr)
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
    kind = "JWT" if token.count(".") == 2 else "opaque"
    return f"{kind}, {len(token)} chars, token_type={r.json().get('token_type')}"


@dataclass
class TokenRun:
    name: str
    result: WrkResult | None = None
    error: str | None = None
    token_format: str | None = None
    memory: list[memory.ProcessMemory] = field(default_factory=list)


def measure_tokens(run: TokenRun, token_endpoint: str, client_id: str, secret: str,
                   args: argparse.Namespace, root_pid: int) -> None:
    run.token_format = probe_token(token_endpoint, client_id, secret)
    auth = basic_auth(client_id, secret)
    if args.warmup > 0:
        run_wrk(token_endpoint, auth, args.threads, args.connections, args.warmup, args.wrk_timeout)
    run.result = run_wrk(token_endpoint, auth, args.threads, args.connections, args.duration,
                         args.wrk_timeout)
    run.memory = memory.tree(root_pid)


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


def bench_node(procs: Processes, tmp: Path, args: argparse.Namespace) -> TokenRun:
    run = TokenRun("node-oidc-provider")
    node = shutil.which("node")
    if not node:
        run.error = "node not found"
        return run
    proc = None
    try:
        ensure_node_modules()
        port = free_port()
        log = tmp / "node.log"
        env = dict(os.environ, PORT=str(port), BENCH_NODE_WORKERS=str(args.node_workers),
                   NODE_ENV="production")
        with open(log, "wb") as fh:
            proc = procs.start("node", [node, "server.js", str(port)], cwd=NODE_DIR, env=env,
                               stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        discovery = wait_http_ok(f"http://{HOST}:{port}/.well-known/openid-configuration",
                                 proc, log, timeout=30)
        measure_tokens(run, discovery["token_endpoint"], NODE_CLIENT_ID, NODE_CLIENT_SECRET,
                       args, proc.pid)
    except BenchError as exc:
        run.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - report, and let the idp part run
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        if proc is not None:
            procs.stop(proc)
    return run


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
        "IDP_DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
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
        proc = procs.start("idp", [idp_executable(), "serve", "--host", HOST, "--port", str(port),
                                   "--workers", str(args.workers), "--server", args.server],
                           env=env, cwd=workdir, stdout=fh, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    discovery = wait_http_ok(f"{issuer}/.well-known/openid-configuration", proc, log, timeout=60)
    if "token_endpoint" not in discovery:
        raise BenchError("discovery document has no token_endpoint")
    return IdpServer(proc, env, issuer, discovery, workdir, log)


def bench_idp_tokens(server: IdpServer, args: argparse.Namespace) -> TokenRun:
    run = TokenRun(f"idp ({args.workers} workers)")
    try:
        creds = idp_json(server.env, server.cwd, "clients", "create", "--name", "bench",
                         "--grant-type", "client_credentials", "--json")
        client_id, secret = creds["client_id"], creds["client_secret"]
        token_endpoint = server.discovery["token_endpoint"]
        if urllib.parse.urlsplit(token_endpoint).hostname != HOST:
            raise BenchError(f"token_endpoint {token_endpoint} is not on {HOST}")
        measure_tokens(run, token_endpoint, client_id, secret, args, server.proc.pid)
    except BenchError as exc:
        run.error = str(exc)
    except (KeyError, TypeError) as exc:
        run.error = f"unexpected output of `idp clients create`: {exc!r}"
    except Exception as exc:  # noqa: BLE001 - report, and let the login part run
        run.error = f"{type(exc).__name__}: {exc}"
    return run


# --------------------------------------------------------------------------
# mail sink
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# HTML step pages
# --------------------------------------------------------------------------


def step_form(page: FormParser) -> dict | None:
    """The form#step of a page, or a consent form (one with a decision button)."""
    if "step" in page.forms:
        return page.forms["step"]
    return next((f for f in page.forms.values() if any(n == "decision" for n, _ in f["buttons"])), None)


# --------------------------------------------------------------------------
# logins
# --------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    password: str
    totp_secret: str | None = None
    last_totp_step: int = -1


@dataclass
class LoginClient:
    client_id: str
    client_secret: str
    redirect_uri: str
    authorization_endpoint: str
    token_endpoint: str


class LoginDriver:
    """Drives one login over HTTP, from /authorize to the token response."""

    MAX_STEPS = 15
    MAX_REDIRECTS = 10
    trail: list[str]  # the visible fields of each step of the last login

    def __init__(self, client: LoginClient, mail: Sink, timeout: float) -> None:
        self.client = client
        self.mail = mail
        self.timeout = timeout
        self._mail_since = mail.count()  # mails before this index are not for this login
        self.trail = []

    def login(self, account: Account) -> dict:
        """One complete login in a fresh cookie jar; returns the token response."""
        import requests

        with requests.Session() as http:
            http.headers["Accept-Language"] = "en"
            return self._login(http, account)

    def _login(self, http, account: Account) -> dict:
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
        resp, url = self._follow(http, http.get(url, allow_redirects=False, timeout=self.timeout))
        trail = []
        for _ in range(self.MAX_STEPS):
            if resp is None:  # redirected back to the client
                self.trail = trail + ["code exchange"]
                return self._finish(http, url, state, verifier)
            page = parse(resp.text)
            form = step_form(page)
            alerts = [" ".join(a.split()) for a in page.alert_texts]
            if page.ids.get("totp-secret"):
                account.totp_secret = re.sub(r"\s+", "", page.ids["totp-secret"])
            if form is None:
                raise BenchError(f"no form#step on {_path(url)} (HTTP {resp.status_code}"
                                 f"{'; alert: ' + '; '.join(alerts) if alerts else ''}); "
                                 f"steps so far: {' -> '.join(trail) or 'none'}")
            if resp.status_code >= 400:
                raise BenchError(f"step {_path(url)} answered {resp.status_code}"
                                 f"{': ' + '; '.join(alerts) if alerts else ''}; "
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
            action = urllib.parse.urljoin(resp.url if resp.url else url, form["action"] or url)
            method = form["method"]
            self._mail_since = self.mail.count()
            if method == "post":
                raw = http.post(action, data=data, allow_redirects=False, timeout=self.timeout,
                                headers={"Referer": url})
            else:
                raw = http.get(action, params=data, allow_redirects=False, timeout=self.timeout)
            resp, url = self._follow(http, raw)
        raise BenchError(f"login did not finish within {self.MAX_STEPS} steps: {' -> '.join(trail)}")

    def _follow(self, http, resp):
        """Follow redirects by hand; stop (None, location) at the client's redirect_uri."""
        for _ in range(self.MAX_REDIRECTS):
            if resp.status_code not in (301, 302, 303, 307, 308):
                return resp, resp.url
            location = urllib.parse.urljoin(resp.url, resp.headers.get("Location", ""))
            if location.startswith(self.client.redirect_uri):
                return None, location
            if urllib.parse.urlsplit(location).hostname != HOST:
                raise BenchError(f"redirect to a foreign host refused: {location}")
            resp = http.get(location, allow_redirects=False, timeout=self.timeout)
        raise BenchError(f"more than {self.MAX_REDIRECTS} redirects from {resp.url}")

    def _finish(self, http, location: str, state: str, verifier: str) -> dict:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        if "error" in query:
            raise BenchError(f"authorization error: {query.get('error')} "
                             f"{query.get('error_description', '')}".strip())
        if query.get("state") != state:
            raise BenchError("state mismatch in the authorization response")
        if "code" not in query:
            raise BenchError(f"no code in the authorization response: {location}")
        r = http.post(self.client.token_endpoint, timeout=self.timeout, data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": self.client.redirect_uri,
            "code_verifier": verifier,
        }, headers={"Authorization": basic_auth(self.client.client_id, self.client.client_secret),
                    "Accept": "application/json"})
        if r.status_code != 200:
            raise BenchError(f"code exchange answered {r.status_code}: {r.text[:300]}")
        body = r.json()
        if "access_token" not in body:
            raise BenchError(f"code exchange returned no access_token: {r.text[:300]}")
        return body


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path or "/"


@dataclass
class LoginResult:
    logins: int = 0
    seconds: float = 0.0
    durations: list[float] = field(default_factory=list)
    concurrency: int = 1
    setup_seconds: float = 0.0
    first_trail: list[str] = field(default_factory=list)
    trail: list[str] = field(default_factory=list)
    error: str | None = None


def bench_logins(server: IdpServer, mail: Sink, args: argparse.Namespace) -> LoginResult:
    res = LoginResult(concurrency=args.login_concurrency)
    n = args.logins
    try:
        import pyotp  # noqa: F401
        import requests  # noqa: F401

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
        accounts = []
        t0 = time.monotonic()
        for i in range(n):
            acct = Account(f"bench-{run_tag}-{i}@example.com", secrets.token_urlsafe(18))
            idp_json(server.env, server.cwd, "users", "create", "--email", acct.email,
                     "--password", acct.password, "--name", f"Bench {i}", "--json")
            accounts.append(acct)
        for acct in accounts:  # first logins: e-mail code + TOTP enrolment
            driver_first = LoginDriver(client, mail, timeout=args.http_timeout)
            try:
                driver_first.login(acct)
            except BenchError as exc:
                raise BenchError(f"first login of {acct.email}: {exc}") from None
            res.first_trail = res.first_trail or driver_first.trail
            if not acct.totp_secret:
                raise BenchError(f"first login of {acct.email} finished without TOTP enrolment "
                                 f"(no #totp-secret shown)")
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
            driver = LoginDriver(client, mail, timeout=args.http_timeout)
            start = time.perf_counter()
            driver.login(acct)
            elapsed = time.perf_counter() - start
            res.trail = res.trail or driver.trail
            return elapsed

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.login_concurrency) as pool:
            futures = [pool.submit(one, a) for a in accounts]
            for fut, acct in zip(futures, accounts):
                try:
                    res.durations.append(fut.result(timeout=args.http_timeout * 20))
                except BenchError as exc:
                    raise BenchError(f"login of {acct.email}: {exc}") from None
                except concurrent.futures.TimeoutError:
                    raise BenchError(f"login of {acct.email} took too long") from None
        res.seconds = time.perf_counter() - start
        res.logins = len(res.durations)
    except BenchError as exc:
        res.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - the login flow may be unfinished
        res.error = f"{type(exc).__name__}: {exc}"
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
    res = ArgonResult()
    try:
        hasher, res.source = project_hasher()
        res.params = (f"type={hasher.type.name}, time_cost={hasher.time_cost}, "
                      f"memory_cost={hasher.memory_cost} KiB, parallelism={hasher.parallelism}")
        password = "correct horse battery staple"
        hasher.hash(password)  # warm-up, not counted
        budget = args.argon2_seconds

        count, start = 0, time.perf_counter()
        while count < args.argon2_hashes and time.perf_counter() - start < budget:
            hasher.hash(password)
            count += 1
        res.single_per_s = count / (time.perf_counter() - start)
        res.hashes = count

        threads = os.cpu_count() or 1
        res.parallel_threads = threads
        if threads > 1:
            per_thread = max(1, args.argon2_hashes // threads)
            deadline = time.perf_counter() + budget
            counts = [0] * threads

            def work(i: int) -> None:
                while counts[i] < per_thread and time.perf_counter() < deadline:
                    hasher.hash(password)
                    counts[i] += 1

            start = time.perf_counter()
            workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
            for w in workers:
                w.start()
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


def report_tokens(runs: list[TokenRun], args: argparse.Namespace) -> dict:
    print()
    print(f"== client_credentials tokens: wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s --latency (after {args.warmup}s warm-up) ==")
    header = f"{'server':<24}{'tokens/s':>10}{'p50':>11}{'p99':>11}{'non-200':>9}{'sock.err':>9}  note"
    print(header)
    out = {}
    for run in runs:
        r = run.result
        if r is None:
            print(f"{run.name:<24}{'unavailable':>10}  ({run.error})")
            out[run.name] = {"error": run.error}
            continue
        note = "ok" if r.clean else "RUN HAD ERRORS"
        if r.non_200:
            note += " statuses=" + ",".join(f"{s}:{n}" for s, n in sorted(r.statuses.items()))
        print(f"{run.name:<24}{fmt(r.requests_per_s):>10}{fmt(r.p50_ms, '.2f', ' ms'):>11}"
              f"{fmt(r.p99_ms, '.2f', ' ms'):>11}{r.non_200:>9}{r.socket_error_total:>9}  {note}")
        out[run.name] = {
            "tokens_per_s": r.requests_per_s, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
            "requests": r.requests, "non_200": r.non_200, "statuses": r.statuses,
            "socket_errors": r.socket_errors, "clean": r.clean, "token_format": run.token_format,
        }
    for run in runs:
        if run.token_format:
            print(f"  {run.name} access token: {run.token_format}")
    idp, node = runs[0].result, runs[1].result
    if idp and node and idp.requests_per_s and node.requests_per_s:
        ratio = idp.requests_per_s / node.requests_per_s
        caveat = "" if idp.clean and node.clean else "  (a run had errors: ratio not meaningful)"
        print(f"ratio idp/node tokens/s: {ratio:.3f}{caveat}")
        if idp.p50_ms and node.p50_ms and idp.p99_ms and node.p99_ms:
            print(f"ratio idp/node latency: p50 {idp.p50_ms / node.p50_ms:.2f}x, "
                  f"p99 {idp.p99_ms / node.p99_ms:.2f}x")
        out["ratio_idp_node"] = ratio
    else:
        print("ratio idp/node tokens/s: unavailable")
    print("memory after each run (RSS counts shared pages in every process, PSS once: PSS adds up):")
    for run in runs:
        if run.memory:
            memory.print_tree(run.memory, label=run.name)
            out.setdefault(run.name, {})["memory"] = memory.as_json(run.memory)
    return out


def report_logins(res: LoginResult | None, argon: ArgonResult | None, args: argparse.Namespace) -> dict:
    print()
    print("== interactive logins (authorize + e-mail + password + TOTP + code exchange) ==")
    out: dict[str, Any] = {}
    if res is None:
        print("logins/s: unavailable (skipped)")
    elif res.error:
        print(f"logins/s: unavailable ({res.error})")
        out["logins_error"] = res.error
    elif res.logins and res.seconds > 0:
        rate = res.logins / res.seconds
        d = sorted(res.durations)
        p50 = statistics.median(d)
        print(f"logins/s: {rate:.2f}  ({res.logins} logins, {res.concurrency} at a time, "
              f"{res.seconds:.2f} s; per login p50 {p50 * 1e3:.0f} ms, max {d[-1] * 1e3:.0f} ms)")
        print(f"  set-up (create accounts + first logins with e-mail code and TOTP enrolment): "
              f"{res.setup_seconds:.1f} s, not counted")
        if res.first_trail:
            print(f"  first login: {' -> '.join(res.first_trail)}")
        if res.trail:
            print(f"  measured login: {' -> '.join(res.trail)}")
        out.update({"logins_per_s": rate, "logins": res.logins, "concurrency": res.concurrency,
                    "login_p50_ms": p50 * 1e3, "login_max_ms": d[-1] * 1e3})
    else:
        print("logins/s: unavailable (no login measured)")
    if argon is None:
        print("argon2id hashes/s: skipped")
    elif argon.error:
        print(f"argon2id hashes/s: unavailable ({argon.error})")
    else:
        par = (f", {argon.parallel_per_s:.1f}/s with {argon.parallel_threads} threads"
               if argon.parallel_per_s is not None else "")
        print(f"argon2id hashes/s: {argon.single_per_s:.1f}/s in one thread{par} "
              f"({argon.hashes} hashes)")
        print(f"  parameters: {argon.params}; from {argon.source}")
        out.update({"argon2_per_s_single": argon.single_per_s,
                    "argon2_per_s_parallel": argon.parallel_per_s,
                    "argon2_threads": argon.parallel_threads, "argon2_params": argon.params})
    return out


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="idp token and login throughput, next to node-oidc-provider.")
    p.add_argument("--duration", type=int, default=10, help="seconds of measured load per server (10)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured warm-up load (3)")
    p.add_argument("--wrk-timeout", type=int, default=5, help="wrk per-request timeout, seconds (5)")
    p.add_argument("--workers", type=int, default=2, help="idp serve --workers (2)")
    p.add_argument("--server", choices=["granian", "gunicorn"], default="granian",
                   help="idp serve --server: the WSGI server (granian)")
    p.add_argument("--node-workers", type=int, default=1,
                   help="node-oidc-provider processes (node:cluster); 1 = one event loop (1)")
    p.add_argument("--logins", type=int, default=20, help="accounts / measured logins (20; 0 skips)")
    p.add_argument("--login-concurrency", type=int, default=1,
                   help="logins driven at the same time (1)")
    p.add_argument("--http-timeout", type=float, default=30.0, help="per HTTP request in the login part")
    p.add_argument("--argon2-hashes", type=int, default=100, help="max Argon2id hashes per measurement (100)")
    p.add_argument("--argon2-seconds", type=float, default=20.0, help="time cap per Argon2id measurement")
    p.add_argument("--skip-node", action="store_true", help="do not run node-oidc-provider")
    p.add_argument("--skip-idp", action="store_true", help="do not run idp (tokens and logins)")
    p.add_argument("--skip-argon2", action="store_true")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, db)")
    args = p.parse_args(argv)
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
    node_run = TokenRun("node-oidc-provider", error="skipped")
    idp_run = TokenRun(f"idp ({args.workers} workers)", error="skipped")
    logins: LoginResult | None = None
    argon: ArgonResult | None = None
    interrupted = False
    print(f"idp benchmark: {os.cpu_count()} CPUs, wrk {_wrk_version()}, node {_node_version()}")
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
                print("-- idp: client_credentials load", flush=True)
                idp_run = bench_idp_tokens(server, args)
                if args.logins > 0:
                    print(f"-- idp: {args.logins} accounts, first logins, then measured logins",
                          flush=True)
                    logins = bench_logins(server, mail, args)
                procs.stop(server.proc)
        if not args.skip_argon2:
            print("-- argon2id hashing", flush=True)
            argon = bench_argon2(args)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping servers", file=sys.stderr)
    finally:
        procs.stop_all()
        mail.stop()
        if args.keep_tmp:
            print(f"temporary files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        return 130
    figures = report_tokens([idp_run, node_run], args)
    figures.update(report_logins(logins, argon, args))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


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
