"""A serving worker's standard error (telemetry.logs.BatchedStream): every line written reaches the
file, in the order each thread wrote it, also the last ones when the worker ends."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

from idp.telemetry import logs


def _stream_into(tmp_path):
    path = tmp_path / "stderr"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return path, fd


def test_lines_of_many_threads_all_arrive_in_each_threads_order(tmp_path):
    path, fd = _stream_into(tmp_path)
    try:
        stream = logs.BatchedStream(fd)

        def write(name):
            for i in range(2000):
                stream.write(f"{name} {i}\n")

        threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        deadline = time.monotonic() + 5
        while path.stat().st_size < sum(len(f"t0 {i}\n") for i in range(2000)) * 4 and time.monotonic() < deadline:
            time.sleep(logs.BATCH_SECONDS)
        lines = path.read_text().splitlines()
    finally:
        os.close(fd)
    assert len(lines) == 8000
    for n in range(4):
        assert [int(line.split()[1]) for line in lines if line.startswith(f"t{n} ")] == list(range(2000))


def test_a_line_is_written_within_a_batch_interval_not_at_once(tmp_path):
    path, fd = _stream_into(tmp_path)
    try:
        stream = logs.BatchedStream(fd)
        stream.write("one line\n")
        stream.flush()  # a handler flushes after every record: that must not cost a write of its own
        deadline = time.monotonic() + 5
        while not path.read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert path.read_text() == "one line\n"
    finally:
        os.close(fd)


def test_a_worker_that_ends_writes_its_last_lines_first(tmp_path):
    """The process ends right after logging: the writer thread outlives the main thread and
    writes what is left; nothing is lost, not even the line logged last."""
    script = textwrap.dedent("""
        import logging, sys
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from idp.telemetry import logs
        logs.write_in_batches()
        log = logging.getLogger("worker")
        for i in range(500):
            log.info("line %d", i)
        print("printed last", file=sys.stderr)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines == [f"line {i}" for i in range(500)] + ["printed last"]


def test_not_a_file_is_left_as_it_is(monkeypatch):
    class Captured:
        def write(self, text):
            return len(text)

        def flush(self):
            pass

    captured = Captured()
    monkeypatch.setattr(sys, "stderr", captured)
    logs.write_in_batches()
    assert sys.stderr is captured
