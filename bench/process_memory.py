"""Memory of a server's whole process tree: RSS and PSS of every process from /proc/PID/smaps_rollup.

RSS counts every page a process maps, also the pages it shares with its master after a fork, so
the RSS of a pre-fork server's processes added up overstates what the server takes. PSS divides
each shared page among the processes that map it: the PSS of all processes added up is what the
server really takes. USS (private clean + private dirty) is what a process alone holds: what
stopping it would give back. PSS anon is the part of PSS in anonymous memory (the heaps, Python's
objects): unlike the pages of shared libraries (libpython, libc, OpenSSL), which are divided among
every process of the machine that maps them, these are shared within the tree only, so the figure
does not move with what else runs on the machine: the one to compare two versions with.

``tree(pid)`` lists a process and all its descendants, ``print_tree(rows)`` prints them and
their totals (bench/tokens.py, bench/soak.py and the command bench/memory.py use them).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

# smaps_rollup fields, in KiB.
_FIELDS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon", "Private_Clean": "private_clean",
           "Private_Dirty": "private_dirty", "Swap": "swap", "SwapPss": "swap_pss"}
# Threads that say what a worker runs besides requests (idp.ops.serving names them).
_LOOP_THREADS = ("idp-delivery", "idp-prune")


@dataclass
class ProcessMemory:
    pid: int
    ppid: int
    role: str
    rss_kib: int
    pss_kib: int
    pss_anon_kib: int
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


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command's name (state, parent pid, ...)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[1]), fields[0])


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


def cpu_seconds(root: int) -> tuple[float, float]:
    """CPU time (user, system) that root and its live descendants have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for pid in descendants(root):
        fields = _stat_fields(pid)
        if fields is not None:
            user, system = user + int(fields[11]), system + int(fields[12])
    return user / ticks, system / ticks


def reaped_cpu_seconds(root: int) -> float:
    """CPU time (user and system) of root's children that ended and that root has waited for:
    a server that starts and reaps processes of its own (PostgreSQL's backends and workers,
    Redis's snapshots) keeps their time there, which ``cpu_seconds`` of the live ones leaves out."""
    fields = _stat_fields(root)
    return 0.0 if fields is None else (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def switches_of(status: str) -> int:
    """The context switches a ``/proc/PID/task/TID/status`` text counts: the thread gave up the
    CPU itself (it waited: for a lock, the GIL, a socket, a sleep) or was made to."""
    total = 0
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            total += int(value)
    return total


def context_switches(root: int) -> int:
    """Context switches of every live thread of root and its live descendants so far. A thread
    that ended takes its count with it (the kernel adds it up nowhere it can be read): compare
    two readings of a server whose threads live through the interval, as under steady load."""
    return sum(switches_of(status) for pid in descendants(root) for status in _of_threads(pid, "status"))


def _of_threads(pid: int, name: str) -> list[str]:
    """The file ``name`` of each live thread of a process (``/proc/PID/task/TID/name``): none for a
    process, or a thread, that has gone."""
    texts = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return texts
    for task in tasks:
        try:
            texts.append(Path(f"/proc/{pid}/task/{task}/{name}").read_text())
        except OSError:
            continue
    return texts


def where_threads_wait(root: int) -> str:
    """The live threads of root and its descendants, grouped by process and by what they are in:
    ``PID: N x name:state:wchan:syscall, ...`` (wchan is the kernel function a sleeping thread
    waits in, syscall the number of the system call it is in, or ``running``). What a process that
    stopped answering is doing."""
    groups = []
    for pid in descendants(root):
        try:
            tasks = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
        except OSError:
            continue
        seen: dict[str, int] = {}
        for task in tasks:
            stat = _stat(int(task))  # a thread's id names it in /proc as a process's does
            if stat is None:
                continue
            base = f"/proc/{pid}/task/{task}"
            try:
                name = Path(f"{base}/comm").read_text().strip()
                wchan = Path(f"{base}/wchan").read_text().strip() or "-"
                syscall = Path(f"{base}/syscall").read_text().split()[0]
            except (OSError, IndexError):
                continue
            state = stat[1]
            key = f"{name}:{state}:{wchan}:{syscall}"
            seen[key] = seen.get(key, 0) + 1
        if seen:
            groups.append(f"{pid}: " + ", ".join(f"{n} x {key}" for key, n in seen.items()))
    return "; ".join(groups) or "no live thread"


def thread_names(pid: int) -> list[str]:
    """The names of a process's threads (`ps -L`)."""
    return [comm.strip() for comm in _of_threads(pid, "comm")]


def _role(pid: int, root: int, command: str, root_command: str, alone: bool) -> str:
    if pid == root:
        return "process" if alone else "master"
    if command.startswith("["):
        return command[1:command.index("]")]  # a forked helper that named itself
    if command != root_command:
        return "helper"
    loops = [name.removeprefix("idp-") for name in _LOOP_THREADS if name in thread_names(pid)]
    return "+".join(["worker", *loops])  # worker+delivery+prune: the worker whose turn the loops are


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
            pss_kib=figures["pss"], pss_anon_kib=figures["pss_anon"],
            uss_kib=figures["private_clean"] + figures["private_dirty"],
            swap_pss_kib=figures["swap_pss"], command=command,
        ))
    return rows


def totals(rows: list[ProcessMemory]) -> dict[str, float]:
    """Sums in MiB. PSS (+ swapped-out PSS) is the tree's real footprint; RSS double-counts shared pages."""
    return {
        "rss_mib": sum(r.rss_kib for r in rows) / 1024,
        "pss_mib": sum(r.pss_kib for r in rows) / 1024,
        "pss_anon_mib": sum(r.pss_anon_kib for r in rows) / 1024,
        "uss_mib": sum(r.uss_kib for r in rows) / 1024,
        "swap_pss_mib": sum(r.swap_pss_kib for r in rows) / 1024,
        "processes": len(rows),
    }


def print_tree(rows: list[ProcessMemory], label: str = "", file=None, width: int = 60) -> dict[str, float]:
    """One line per process (RSS, PSS, PSS anon, USS in MiB) and a total line; returns the totals."""
    file = file or sys.stdout
    label = f"{label:<22} " if label else ""
    for r in rows:
        print(f"  {label}{r.role:<21} pid {r.pid:<7} RSS {r.rss_mib:>6.1f}  PSS {r.pss_mib:>6.1f}  "
              f"anon {r.pss_anon_kib / 1024:>6.1f}  USS {r.uss_kib / 1024:>6.1f} MiB  {r.command[:width]}", file=file)
    sums = totals(rows)
    swapped = f"  (+{sums['swap_pss_mib']:.1f} MiB PSS swapped out)" if sums["swap_pss_mib"] >= 0.1 else ""
    print(f"  {label}{'total':<21} {sums['processes']:>2} procs  RSS {sums['rss_mib']:>6.1f}  "
          f"PSS {sums['pss_mib']:>6.1f}  anon {sums['pss_anon_mib']:>6.1f}  USS {sums['uss_mib']:>6.1f} MiB{swapped}",
          file=file)
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
        print(f"  {r.role:<21} pid {r.pid:<7} private MiB: {parts}", file=file or sys.stdout)


def as_json(rows: list[ProcessMemory]) -> dict:
    return {"processes": [asdict(r) for r in rows], "totals": totals(rows)}
