#!/usr/bin/env python3
"""Latency at a constant rate, and a soak: does p99 or memory grow over time?

    python bench/soak.py [--minutes 30] [--interval 60] [--fraction 0.5 | --rate R]

Starts a fresh `idp serve --workers 2` (SQLite in a temporary directory, as bench/tokens.py does),
finds the peak client-credentials rate with an unpaced wrk run (16 connections), then sends tokens
at a constant fraction of it (half by default) with wrk pacing each connection
(bench/paced_token.lua), for --minutes, one wrk run per --interval. After every interval it prints
the rate it got, p50/p99/max latency, errors, and RSS and PSS summed over the server's process tree
(bench/memory.py); at the end, how much p99 and memory grew from the first intervals to the last.
It prints figures and asserts nothing. See bench/README.md, "Latency at half the peak, and the soak".
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PACED_SCRIPT = BENCH_DIR / "paced_token.lua"
sys.path.insert(0, str(BENCH_DIR))

import process_memory as memory  # noqa: E402
import tokens as bench  # noqa: E402

# Each connection waits about this long between its requests: long enough that wrk's whole
# milliseconds pace it evenly, short enough that few connections are needed.
TARGET_GAP_MS = 20


@dataclass
class Interval:
    second: float  # since the start of the measured phase, at the end of this interval
    target_per_s: float
    rate_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    non_200: int
    socket_errors: int
    rss_mib: float
    pss_mib: float


def paced_wrk(url: str, authorization: str, connections: int, gap_ms: int, seconds: int,
              timeout_s: int = 5) -> tuple[bench.WrkResult, float | None, float | None]:
    """One paced wrk run: the parsed result, and the mean and max latency in ms."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise bench.BenchError("wrk not found (apt-get install -y wrk)")
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s", "--latency",
           "-s", str(PACED_SCRIPT), url, "--", authorization, str(gap_ms)]
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    except subprocess.TimeoutExpired as exc:
        raise bench.BenchError(f"wrk did not finish within {seconds + timeout_s + 30}s") from exc
    if cp.returncode != 0:
        raise bench.BenchError(f"wrk exited with {cp.returncode}: {cp.stderr.strip() or cp.stdout.strip()}")
    out = cp.stdout + cp.stderr
    result = bench.parse_wrk(out)
    if result.requests_per_s is None:
        raise bench.BenchError(f"could not parse wrk output:\n{out}")
    figures = {}
    for line in out.splitlines():
        if line.startswith("bench:latency_us mean ") or line.startswith("bench:latency_us max "):
            _, name, value = line.split()
            figures[name] = float(value) / 1e3
    return result, figures.get("mean"), figures.get("max")


def pace(target: float, connections: int | None) -> tuple[int, int]:
    """(connections, gap in ms) for ``target`` requests per second."""
    if connections is None:
        connections = max(1, min(64, round(target * TARGET_GAP_MS / 1000)))
    return connections, max(1, round(connections * 1000 / target))


def corrected_gap(gap: int, connections: int, target: float, got: float) -> int:
    """The gap for the next run: each connection sends one request per gap plus answer time plus
    wrk's own delays, so take off (or add) what the last run's period per connection was too long
    (or short) against the target's; half of it, so that one noisy run does not swing the next."""
    if not got:
        return gap
    return max(1, round(gap + (connections * 1000 / target - connections * 1000 / got) / 2))


def growth(first: float | None, last: float | None) -> float | None:
    return None if not first or last is None else (last - first) / first * 100


def report(intervals: list[Interval], args: argparse.Namespace) -> dict:
    print()
    if not intervals:
        print("no interval measured")
        return {}
    half = max(1, len(intervals) // 2)
    early = [i.p99_ms for i in intervals[:half] if i.p99_ms is not None]
    late = [i.p99_ms for i in intervals[-half:] if i.p99_ms is not None]
    early_p99 = statistics.median(early) if early else None
    late_p99 = statistics.median(late) if late else None
    worst = max((i.p99_ms for i in intervals if i.p99_ms is not None), default=None)
    first, last = intervals[0], intervals[-1]
    summary = {
        "intervals": len(intervals),
        "p99_ms_median_first_half": early_p99,
        "p99_ms_median_second_half": late_p99,
        "p99_ms_worst_interval": worst,
        "p99_growth_pct": growth(early_p99, late_p99),
        "rss_mib_first": first.rss_mib, "rss_mib_last": last.rss_mib,
        "rss_growth_pct": growth(first.rss_mib, last.rss_mib),
        "pss_mib_first": first.pss_mib, "pss_mib_last": last.pss_mib,
        "pss_growth_pct": growth(first.pss_mib, last.pss_mib),
        "errors": sum(i.non_200 + i.socket_errors for i in intervals),
    }

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f} %"

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} ms"

    print(f"== soak: {len(intervals)} intervals of {args.interval} s at {first.target_per_s:.0f} tokens/s ==")
    over = sum(1 for i in intervals if i.p99_ms is None or i.p99_ms > args.p99_limit)
    verdict = "met in every interval" if not over else f"NOT met in {over} of {len(intervals)} intervals"
    summary["p99_intervals_over_limit"] = over
    print(f"p99: median {ms(early_p99)} in the first half, {ms(late_p99)} in the second "
          f"({pct(summary['p99_growth_pct'])}); worst interval {ms(worst)}; {args.p99_limit:g} ms {verdict}")
    for name in ("rss", "pss"):
        change = summary[f"{name}_growth_pct"]
        verdict = "n/a" if change is None else ("under" if change < args.growth_limit else "NOT under")
        print(f"{name.upper()}: {summary[f'{name}_mib_first']:.1f} MiB after the first interval, "
              f"{summary[f'{name}_mib_last']:.1f} MiB after the last ({pct(change)}; {verdict} {args.growth_limit:g} %)")
    if summary["errors"]:
        print(f"errors: {summary['errors']} non-200 answers or socket errors: the figures are not clean")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="idp token latency at a constant rate, and a soak for growth.")
    p.add_argument("--minutes", type=float, default=30, help="length of the measured phase (30)")
    p.add_argument("--interval", type=int, default=60, help="seconds per measured interval (60)")
    p.add_argument("--warmup", type=int, default=20, help="seconds of paced load before the first interval (20)")
    p.add_argument("--fraction", type=float, default=0.5, help="share of the peak rate to send (0.5)")
    p.add_argument("--rate", type=float, help="send this many tokens/s instead of a share of a measured peak")
    p.add_argument("--peak-seconds", type=int, default=10, help="length of the unpaced peak run (10)")
    p.add_argument("--connections", type=int, help="paced connections (default: about one per 20 ms of gap)")
    p.add_argument("--workers", type=int, default=2, help="idp serve --workers (2)")
    p.add_argument("--server", choices=["granian", "gunicorn"], default="granian", help="idp serve --server")
    p.add_argument("--p99-limit", type=float, default=10.0, help="the p99 goal in ms, for the verdict (10)")
    p.add_argument("--growth-limit", type=float, default=5.0, help="the growth goal in %% (5)")
    p.add_argument("--json", metavar="PATH", help="also write every interval and the summary as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, database)")
    args = p.parse_args(argv)
    if not (0 < args.minutes <= 24 * 60 and 5 <= args.interval <= 3600 and 0 <= args.warmup <= 600):
        p.error("bounds: 0 < --minutes <= 1440, 5 <= --interval <= 3600, 0 <= --warmup <= 600")
    if not 0 < args.fraction <= 1 or (args.rate is not None and args.rate <= 0):
        p.error("--fraction must be in (0, 1] and --rate above 0")
    if args.workers < 1 or (args.connections is not None and not 1 <= args.connections <= 1000):
        p.error("--workers must be at least 1, --connections between 1 and 1000")
    if not 1 <= args.peak_seconds <= 120:
        p.error("--peak-seconds must be between 1 and 120")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, bench._raise_keyboard_interrupt)
    procs = bench.Processes()
    tmp = Path(tempfile.mkdtemp(prefix="idp-soak-"))
    intervals: list[Interval] = []
    summary: dict = {}
    try:
        server = bench.start_idp(procs, tmp, argparse.Namespace(workers=args.workers, idp_threads=None, scheduling=None, server=args.server, database_url=None), None)
        creds = bench.idp_json(server.env, server.cwd, "clients", "create", "--name", "soak",
                               "--grant-type", "client_credentials", "--json")
        url = server.discovery["token_endpoint"]
        print(f"idp serve --workers {args.workers} --server {args.server}; access token: "
              f"{bench.probe_token(url, creds['client_id'], creds['client_secret'])}")
        auth = bench.basic_auth(creds["client_id"], creds["client_secret"])
        if args.rate is None:
            peak = bench.run_wrk(url, auth, 2, 16, args.peak_seconds, 5)
            target = peak.requests_per_s * args.fraction
            print(f"peak (wrk -t2 -c16 -d{args.peak_seconds}s, unpaced): {peak.requests_per_s:.0f} tokens/s, "
                  f"p99 {peak.p99_ms:.2f} ms; target {args.fraction:g} x peak = {target:.0f} tokens/s")
        else:
            target = args.rate
            print(f"target {target:.0f} tokens/s (--rate)")
        connections, gap = pace(target, args.connections)
        if args.warmup:
            result, _, _ = paced_wrk(url, auth, connections, gap, args.warmup)
            print(f"warm-up {args.warmup} s: {result.requests_per_s:.0f} tokens/s, p99 {result.p99_ms:.2f} ms")
            gap = corrected_gap(gap, connections, target, result.requests_per_s)
        print(f"{'second':>7} {'target/s':>9} {'got/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'errors':>6} {'RSS MiB':>8} {'PSS MiB':>8}   (wrk -t1 -c{connections}, paced)")
        started = time.monotonic()
        deadline = started + args.minutes * 60
        while time.monotonic() < deadline - 1:
            seconds = max(1, min(args.interval, round(deadline - time.monotonic())))
            result, _, worst = paced_wrk(url, auth, connections, gap, seconds)
            gap = corrected_gap(gap, connections, target, result.requests_per_s)
            sums = memory.totals(memory.tree(server.proc.pid))
            row = Interval(
                second=time.monotonic() - started, target_per_s=target, rate_per_s=result.requests_per_s,
                p50_ms=result.p50_ms, p99_ms=result.p99_ms, max_ms=worst, non_200=result.non_200,
                socket_errors=result.socket_error_total, rss_mib=sums["rss_mib"], pss_mib=sums["pss_mib"],
            )
            intervals.append(row)
            print(f"{row.second:>7.0f} {target:>9.0f} {row.rate_per_s:>7.0f} {row.p50_ms or 0:>7.2f} "
                  f"{row.p99_ms or 0:>7.2f} {row.max_ms or 0:>7.1f} {row.non_200 + row.socket_errors:>6} "
                  f"{row.rss_mib:>8.1f} {row.pss_mib:>8.1f}", flush=True)
        procs.stop(server.proc)
    except KeyboardInterrupt:
        print("interrupted: the intervals so far", file=sys.stderr)
    except bench.BenchError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    finally:
        bench.clean_up(procs, None, tmp, args.keep_tmp)
    summary = report(intervals, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"intervals": [asdict(i) for i in intervals], "summary": summary},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
