"""A worker gives the free memory of its heap back to the system (idp.ops.serving.Heap)."""

from __future__ import annotations

import ctypes
import threading
import time
from pathlib import Path

import pytest

from idp.ops import serving

heap = serving.Heap.of_this_process()
pytestmark = pytest.mark.skipif(heap is None, reason="the allocator is not glibc's")

MIB = 1 << 20


def _rss() -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Rss in smaps_rollup")


def test_give_back_returns_the_free_pages_of_the_heap_to_the_system():
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # 20 MiB in blocks small enough for the heap (not mapped on their own), written to, and freed
    # below a block still in use: the heap keeps them, as it keeps the block of an Argon2id hash.
    blocks = [libc.malloc(64 * 1024) for _ in range(320)]
    sentinel = libc.malloc(64)
    try:
        for block in blocks:
            ctypes.memset(block, 1, 64 * 1024)
        for block in blocks:
            libc.free(block)
        assert heap.free_bytes() >= 20 * MIB
        held = _rss()
        assert heap.give_back(8 * MIB) is True
        assert held - _rss() >= 15 * MIB
    finally:
        libc.free(sentinel)


def test_give_back_does_nothing_while_less_is_free_than_asked(monkeypatch):
    trims = []
    monkeypatch.setattr(heap, "_trim", trims.append)
    assert heap.give_back(1 << 50) is False
    assert trims == []


def test_the_watch_thread_of_a_worker_gives_back_the_heap_every_interval(monkeypatch):
    asked = []

    class Recording:
        def give_back(self, at_least):
            asked.append(at_least)
            return False

    monkeypatch.setattr(serving.Heap, "of_this_process", classmethod(lambda cls: Recording()))
    monkeypatch.setattr(serving, "PARENT_CHECK_INTERVAL", 0.01)
    monkeypatch.setattr(serving, "TRIM_INTERVAL", 0.05)
    stop = threading.Event()
    serving._watch_worker(stop)
    try:
        deadline = time.monotonic() + 5
        while len(asked) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
    assert asked[:3] == [serving.TRIM_MIN_FREE] * 3
