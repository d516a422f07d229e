#!/usr/bin/env python3
"""Memory of a fresh `idp serve`'s whole process tree: RSS and PSS of every process (bench/process_memory.py).

RSS counts every page a process maps, also the pages it shares with its master after a fork, so
the RSS of a pre-fork server's processes added up overstates what the server takes. PSS divides
each shared page among the processes that map it: the PSS of all processes added up is what the
server really takes. USS (private clean + private dirty) is what a process alone holds: what
stopping it would give back.

As a module (bench/tokens.py uses it): ``tree(pid)`` lists a process and all its descendants,
``print_tree(rows)`` prints them and their totals. As a command:

    python bench/memory.py [--workers 2] [--server granian] [--seconds 10] [--logins 3] [--settle 7]

starts a fresh `idp serve` (SQLite in a temporary directory, an SMTP sink), measures its tree
idle, puts client-credentials tokens through it with wrk (and a few full logins, which load what
a sign-in needs: templates, translations, Argon2id, TOTP), and measures it again: right after the
logins, and once more ``--settle`` seconds later, when the workers have given back the free memory
of their heaps (the blocks of their Argon2id hashes among it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_memory import ProcessMemory, tree, print_tree, print_mappings, as_json  # noqa: E402


# --------------------------------------------------------------------------
# the command: a fresh `idp serve`, measured idle and after load
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="RSS and PSS of a fresh `idp serve` process tree, idle and after load.")
    p.add_argument("--workers", type=int, default=2, help="idp serve --workers (2)")
    p.add_argument("--server", choices=["granian", "gunicorn"], default="granian", help="idp serve --server (granian)")
    p.add_argument("--seconds", type=int, default=10, help="seconds of client-credentials load with wrk (10; 0: none)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--logins", type=int, default=3, help="accounts enrolled and signed in after the tokens (3; 0: none)")
    p.add_argument("--settle", type=float, default=7.0, metavar="S",
                   help="measure again S seconds after the logins (7; 0: not): a worker gives its heap's free "
                        "memory back every 5 s (idp.ops.serving.TRIM_INTERVAL), its last Argon2id block too")
    p.add_argument("--mappings", type=int, default=0, metavar="N",
                   help="also print each process's N largest kinds of private pages after the last phase")
    p.add_argument("--pid", type=int, help="only measure the running process tree of this pid and exit")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, database)")
    args = p.parse_args(argv)
    if args.workers < 1 or args.connections < 1 or not 1 <= args.threads <= args.connections:
        p.error("--workers and --connections must be at least 1, --threads between 1 and --connections")
    if not (0 <= args.seconds <= 600 and 0 <= args.logins <= 100 and 0 <= args.settle <= 600):
        p.error("bounds: 0 <= --seconds <= 600, 0 <= --logins <= 100, 0 <= --settle <= 600")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pid:
        rows = tree(args.pid)
        if not rows:
            print(f"no process {args.pid}", file=sys.stderr)
            return 1
        print_tree(rows)
        if args.mappings:
            print_mappings(rows, args.mappings)
        return 0

    import tokens as bench  # bench/tokens.py: the server start-up, wrk and the login driver

    signal.signal(signal.SIGTERM, bench._raise_keyboard_interrupt)
    procs = bench.Processes()
    mail = bench.Sink()
    tmp = Path(tempfile.mkdtemp(prefix="idp-memory-"))
    figures: dict = {}
    try:
        mail_port = mail.start().port
        server = bench.start_idp(procs, tmp, argparse.Namespace(workers=args.workers, idp_threads=None, scheduling=None, server=args.server, database_url=None), mail_port)
        print(f"idp serve --workers {args.workers} --server {args.server} (pid {server.proc.pid}), idle:")
        rows = _settled(server.proc.pid)
        print_tree(rows)
        figures["idle"] = as_json(rows)
        if args.seconds:
            creds = bench.idp_json(server.env, server.cwd, "clients", "create", "--name", "memory",
                                   "--grant-type", "client_credentials", "--json")
            endpoint = server.discovery["token_endpoint"]
            auth = bench.basic_auth(creds["client_id"], creds["client_secret"])
            result = bench.run_wrk(endpoint, auth, args.threads, args.connections, args.seconds, 5)
            print(f"after {args.seconds} s of client-credentials tokens (wrk -t{args.threads} -c{args.connections}): "
                  f"{result.requests_per_s:.0f}/s, non-200 {result.non_200}, socket errors {result.socket_error_total}")
            rows = tree(server.proc.pid)
            print_tree(rows)
            figures["after_tokens"] = as_json(rows)
        if args.logins:
            login_args = argparse.Namespace(logins=args.logins, login_concurrency=min(args.logins, args.workers),
                                            http_timeout=30.0)
            res = bench.bench_logins(server, mail, login_args)
            what = f"{res.logins} measured logins" if not res.error else f"logins failed: {res.error}"
            print(f"after {args.logins} enrolments and {what}:")
            rows = tree(server.proc.pid)
            print_tree(rows)
            figures["after_logins"] = as_json(rows)
            if args.settle:
                time.sleep(args.settle)
                print(f"{args.settle:g} s later:")
                rows = tree(server.proc.pid)
                print_tree(rows)
                figures["after_logins_settled"] = as_json(rows)
        if args.mappings:
            print_mappings(tree(server.proc.pid), args.mappings)
        procs.stop(server.proc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except bench.BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.clean_up(procs, mail, tmp, args.keep_tmp)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _settled(root: int, timeout: float = 15.0) -> list[ProcessMemory]:
    """The tree once its process count has stopped changing (workers and loops still starting)."""
    deadline = time.monotonic() + timeout
    previous = -1
    while True:
        rows = tree(root)
        if len(rows) == previous or time.monotonic() > deadline:
            return rows
        previous = len(rows)
        time.sleep(1.0)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
