#!/usr/bin/env python3
"""Memory of a server's whole process tree: RSS and PSS of every process from /proc/PID/smaps_rollup.

RSS counts every page a process maps, also the pages it shares with its master after a fork, so
the RSS of a pre-fork server's processes added up overstates what the server takes. PSS divides
each shared page among the processes that map it: the PSS of all processes added up is what the
server really takes. USS (private clean + private dirty) is what a process alone holds: what
stopping it would give back.

As a module (bench/tokens.py uses it): ``tree(pid)`` lists a process and all its descendants,
``print_tree(rows)`` prints them and their totals. As a command:

    python bench/memory.py [--workers 2] [--server granian] [--seconds 10] [--logins 3]

starts a fresh `idp serve` (SQLite in a temporary directory, an SMTP sink), measures its tree
idle, puts client-credentials tokens through it with wrk (and a few full logins, which load what
a sign-in needs: templates, translations, Argon2id, TOTP), and measures it again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# smaps_rollup fields, in KiB.
_FIELDS = {"Rss": "rss", "Pss": "pss", "Private_Clean": "private_clean", "Private_Dirty": "private_dirty",
           "Swap": "swap", "SwapPss": "swap_pss"}


@dataclass
class ProcessMemory:
    pid: int
    ppid: int
    role: str
    rss_kib: int
    pss_kib: int
    uss_kib: int
    swap_pss_kib: int
    command: str

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024

    @property
    def pss_mib(self) -> float:
        return self.pss_kib / 1024


def smaps_rollup(pid: int) -> dict[str, int] | None:
    """The process's memory totals in KiB, or None when it is gone (or not ours to read)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    out = dict.fromkeys(_FIELDS.values(), 0)
    for line in text.splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in _FIELDS:
            out[_FIELDS[key]] = int(value.split()[0])
    return out


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found and found[1] != "Z":
                parents[int(entry)] = found[0]
    return parents


def command_of(pid: int) -> str:
    """The command line, and the process name where a forked child set its own (`idp delivery`)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"
    first = os.path.basename(cmd.split(" ", 1)[0]) if cmd else ""
    return cmd if comm in (first, first[:15]) or comm in cmd else f"[{comm}] {cmd}"


def descendants(root: int) -> list[int]:
    """root and every live process below it, parents before their children."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    order, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        order.append(pid)
        todo.extend(sorted(children.get(pid, [])))
    return order


def _role(pid: int, root: int, command: str, root_command: str, alone: bool) -> str:
    if pid == root:
        return "process" if alone else "master"
    if command.startswith("["):
        return command[1:command.index("]")]  # a forked helper that named itself
    return "worker" if command == root_command else "helper"


def tree(root: int) -> list[ProcessMemory]:
    """RSS, PSS and USS of ``root`` and all its descendants (processes that ended meanwhile are left out)."""
    root_command = command_of(root)
    rows = []
    pids = descendants(root)
    for pid in pids:
        figures = smaps_rollup(pid)
        stat = _stat(pid)
        if figures is None or stat is None:
            continue
        command = command_of(pid)
        rows.append(ProcessMemory(
            pid=pid, ppid=stat[0], role=_role(pid, root, command, root_command, len(pids) == 1), rss_kib=figures["rss"],
            pss_kib=figures["pss"], uss_kib=figures["private_clean"] + figures["private_dirty"],
            swap_pss_kib=figures["swap_pss"], command=command,
        ))
    return rows


def totals(rows: list[ProcessMemory]) -> dict[str, float]:
    """Sums in MiB. PSS (+ swapped-out PSS) is the tree's real footprint; RSS double-counts shared pages."""
    return {
        "rss_mib": sum(r.rss_kib for r in rows) / 1024,
        "pss_mib": sum(r.pss_kib for r in rows) / 1024,
        "uss_mib": sum(r.uss_kib for r in rows) / 1024,
        "swap_pss_mib": sum(r.swap_pss_kib for r in rows) / 1024,
        "processes": len(rows),
    }


def print_tree(rows: list[ProcessMemory], label: str = "", file=None, width: int = 60) -> dict[str, float]:
    """One line per process (RSS, PSS, USS in MiB) and a total line; returns the totals."""
    file = file or sys.stdout
    label = f"{label:<22} " if label else ""
    for r in rows:
        print(f"  {label}{r.role:<12} pid {r.pid:<7} RSS {r.rss_mib:>6.1f}  PSS {r.pss_mib:>6.1f}  "
              f"USS {r.uss_kib / 1024:>6.1f} MiB  {r.command[:width]}", file=file)
    sums = totals(rows)
    swapped = f"  (+{sums['swap_pss_mib']:.1f} MiB PSS swapped out)" if sums["swap_pss_mib"] >= 0.1 else ""
    print(f"  {label}{'total':<12} {sums['processes']:>2} procs  RSS {sums['rss_mib']:>6.1f}  "
          f"PSS {sums['pss_mib']:>6.1f}  USS {sums['uss_mib']:>6.1f} MiB{swapped}", file=file)
    return sums


def private_by_mapping(pid: int) -> list[tuple[str, int]]:
    """Where a process's private pages are, in KiB, largest first: a file, [heap] (the C heap:
    glibc's main arena), [anon] (Python's object arenas, thread heaps and stacks) or [stack]."""
    sums: dict[str, int] = {}
    name = "?"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        head = line.split(None, 5)
        if "-" in head[0] and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else "[anon]"
        elif head[0] in ("Private_Clean:", "Private_Dirty:"):
            sums[name] = sums.get(name, 0) + int(head[1])
    return sorted(sums.items(), key=lambda item: -item[1])


def print_mappings(rows: list[ProcessMemory], top: int, file=None) -> None:
    for r in rows:
        parts = ", ".join(f"{os.path.basename(name) or name} {kib / 1024:.1f}"
                          for name, kib in private_by_mapping(r.pid)[:top] if kib >= 64)
        print(f"  {r.role:<12} pid {r.pid:<7} private MiB: {parts}", file=file or sys.stdout)


def as_json(rows: list[ProcessMemory]) -> dict:
    return {"processes": [asdict(r) for r in rows], "totals": totals(rows)}


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
    p.add_argument("--mappings", type=int, default=0, metavar="N",
                   help="also print each process's N largest kinds of private pages after the last phase")
    p.add_argument("--pid", type=int, help="only measure the running process tree of this pid and exit")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, database)")
    args = p.parse_args(argv)
    if args.workers < 1 or args.connections < 1 or not 1 <= args.threads <= args.connections:
        p.error("--workers and --connections must be at least 1, --threads between 1 and --connections")
    if not (0 <= args.seconds <= 600 and 0 <= args.logins <= 100):
        p.error("bounds: 0 <= --seconds <= 600, 0 <= --logins <= 100")
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
        server = bench.start_idp(procs, tmp, argparse.Namespace(workers=args.workers, server=args.server), mail_port)
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
        procs.stop_all()
        mail.stop()
        if args.keep_tmp:
            print(f"temporary files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _settled(root: int, timeout: float = 15.0) -> list[ProcessMemory]:
    """The tree once its process count has stopped changing (workers and loops still starting)."""
    import time

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
