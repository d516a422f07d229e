"""Random bytes read in blocks (idp.random_bytes): each byte handed out once, in every thread, and
never both in a parent and its forked child."""

from __future__ import annotations

import os
import threading

import pytest

from idp import random_bytes
from idp.random_bytes import BLOCK, token_bytes


def test_the_bytes_of_a_block_are_handed_out_once_in_order(monkeypatch):
    blocks = []

    def urandom(n):
        blocks.append(bytes(range(len(blocks), len(blocks) + 1)) * n)  # a recognisable block
        return blocks[-1]

    monkeypatch.setattr(random_bytes.os, "urandom", urandom)
    monkeypatch.setattr(random_bytes, "_local", threading.local())
    drawn = [token_bytes(16) for _ in range(BLOCK // 16 * 3)]
    assert len(blocks) == 3  # one read per block
    assert b"".join(drawn) == b"".join(blocks)  # every byte once, none skipped
    assert len(token_bytes(BLOCK + 1)) == BLOCK + 1  # more than a block: read at once


def test_values_do_not_repeat():
    values = [token_bytes(16) for _ in range(5000)]
    assert len(set(values)) == len(values)
    assert all(len(value) == 16 for value in values)


def test_each_thread_draws_its_own():
    drawn: list[bytes] = []
    lock = threading.Lock()

    def draw():
        mine = [token_bytes(16) for _ in range(200)]
        with lock:
            drawn.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(drawn)) == len(drawn) == 800


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_never_hands_out_its_parent_s_bytes():
    token_bytes(16)  # this thread holds a block, most of it not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it draws next
        try:
            os.write(write, token_bytes(16))
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != token_bytes(16)  # the parent's next bytes are not the child's
