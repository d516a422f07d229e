"""The benchmark's count of a server's context switches, read from /proc."""

import os
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import load_script

process_memory = load_script(Path(__file__).resolve().parents[2] / "bench" / "process_memory.py",
                             "bench_process_memory")

STATUS = """Name:\tpython3
State:\tS (sleeping)
Tgid:\t4242
voluntary_ctxt_switches:\t1500
nonvoluntary_ctxt_switches:\t37
"""


def test_both_kinds_of_switch_are_counted():
    assert process_memory.switches_of(STATUS) == 1537


def test_a_status_without_counts_has_none():
    assert process_memory.switches_of("Name:\tpython3\nState:\tR (running)\n") == 0


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task").is_dir(), reason="needs Linux's /proc")
def test_a_thread_that_waits_is_counted_while_it_lives():
    """Each sleep gives up the CPU: a thread of this process that sleeps 20 times adds at least
    20 switches to the process tree's count, read while it is alive."""
    slept, done = threading.Event(), threading.Event()

    def sleeper():
        for _ in range(20):
            time.sleep(0.001)
        slept.set()
        done.wait(5)

    before = process_memory.context_switches(os.getpid())
    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        assert slept.wait(5)
        after = process_memory.context_switches(os.getpid())
    finally:
        done.set()
        thread.join()
    assert after - before >= 20
