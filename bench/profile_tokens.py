#!/usr/bin/env python3
"""What one token request costs idp itself: the WSGI app called in this process, no server, no network.

    python bench/profile_tokens.py [--requests 2000] [--kind cc|refresh|introspect|all]

For profilers and instruction counters, which need a short, repeatable run of the provider's own
work: a fresh SQLite database in a temporary directory, one confidential client, a pool of
pre-issued refresh tokens (bench/pool.py), then N requests of each kind straight into
``app.wsgi_app`` (every middleware included), each checked for 200. Prints microseconds per
request, wall-clock and CPU time of this process. For example::

    valgrind --tool=callgrind python bench/profile_tokens.py --requests 100 --callgrind
    py-spy record -o refresh.svg -- python bench/profile_tokens.py --kind refresh --requests 5000
    python bench/profile_tokens.py --kind cc --cprofile /tmp/cc.prof   # then: python -m pstats /tmp/cc.prof
    python bench/profile_tokens.py --kind cc --route   # the Flask route, without the lean path (IDP_LEAN_PROTOCOL=false)
    python bench/profile_tokens.py --database-url postgresql+psycopg://postgres@127.0.0.1/DB  # on that database

With ``--database-url`` it runs on that database instead of SQLite (the tables are created if
missing; the client and the tokens are new each run). CPU time is this process's only: the
database server's own is not in it.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import pool  # noqa: E402


def environ(path: str, body: str, authorization: str) -> dict:
    data = body.encode()
    return {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(data)),
        "HTTP_AUTHORIZATION": authorization, "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }


def call(app, path: str, body: str, authorization: str) -> bytes:
    status = []
    chunks = app.wsgi_app(environ(path, body, authorization), lambda s, h, e=None: status.append(s))
    try:
        out = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    if not status or not status[0].startswith("200"):
        raise SystemExit(f"{path} {body[:40]}... answered {status}: {out[:300]!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--kind", choices=["cc", "refresh", "introspect", "all"], default="all")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--callgrind", action="store_true",
                   help="under valgrind --tool=callgrind: zero the counts before each kind's measured "
                        "requests and dump them after (callgrind.out.PID.N, one per kind), so the "
                        "instructions of start-up and set-up are left out")
    p.add_argument("--rate-limits", action="store_true",
                   help="with rate limits on (in-memory storage), as `idp serve` runs by default; "
                        "bench/tokens.py turns them off")
    p.add_argument("--route", action="store_true",
                   help="every request through Flask's dispatch (IDP_LEAN_PROTOCOL=false), not the lean path")
    p.add_argument("--database-url", metavar="URL",
                   help="run on this database (empty, or used by an earlier run) instead of a fresh SQLite file")
    p.add_argument("--cprofile", metavar="PATH",
                   help="profile each kind's measured requests with cProfile into PATH (PATH.KIND with --kind all)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="idp-profile-"))
    try:
        os.environ["IDP_INSTANCE_PATH"] = str(tmp / "instance")
        from idp import create_app
        from idp.extensions import db

        app = create_app({"ENV": "production", "ISSUER": "http://127.0.0.1:8000",
                          "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
                          "SECRET_KEY": secrets.token_hex(32),
                          "RATELIMIT_ENABLED": args.rate_limits, "REDIS_URL": "", "MAIL_SERVER": "",
                          "LEAN_PROTOCOL": not args.route})
        logging.getLogger().setLevel(logging.WARNING)
        with app.app_context():
            db.create_all()
        from idp.cli import cli

        runner = app.test_cli_runner()
        result = runner.invoke(cli, args=["clients", "create", "--name", f"bench {secrets.token_hex(4)}", "--json",
                                          "--grant-type",
                                          "client_credentials", "--grant-type", "authorization_code", "--grant-type",
                                          "refresh_token", "--redirect-uri", "http://127.0.0.1:9/callback"])
        creds = json.loads(result.stdout)
        auth = "Basic " + base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
        kinds = ["cc", "introspect", "refresh"] if args.kind == "all" else [args.kind]
        n = args.requests + args.warmup
        refresh_tokens, access_tokens = pool.seed(app, creds["client_id"], n if "refresh" in kinds else 1,
                                                  "openid offline_access")
        bodies = {
            "cc": lambda i: ("/token", "grant_type=client_credentials"),
            "refresh": lambda i: ("/token", f"grant_type=refresh_token&refresh_token={refresh_tokens[i]}"),
            "introspect": lambda i: ("/introspect", f"token={access_tokens[0]}"),
        }
        for kind in kinds:
            for i in range(args.warmup):
                call(app, *bodies[kind](i), auth)
            if args.callgrind:
                subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=True, capture_output=True)
            profiler = cProfile.Profile() if args.cprofile else None
            start, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            for i in range(args.warmup, n):
                call(app, *bodies[kind](i), auth)
            if profiler is not None:
                profiler.disable()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            if profiler is not None:
                profiler.dump_stats(args.cprofile if len(kinds) == 1 else f"{args.cprofile}.{kind}")
            if args.callgrind:
                subprocess.run(["callgrind_control", f"--dump={kind}", str(os.getpid())], check=True,
                               capture_output=True)
            print(f"{kind:<11} {args.requests} requests, {elapsed / args.requests * 1e6:8.0f} us/request, "
                  f"CPU {cpu / args.requests * 1e6:8.0f} us/request")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
