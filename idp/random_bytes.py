"""Random bytes for request ids and self-contained token ids, read from the OS in blocks.

``os.urandom`` is a system call, which releases the GIL: with a few threads per worker every
request paid two of them (its request id, its token's id) and a hand-over of the GIL each. Here
each thread reads a block of the OS's CSPRNG at once and hands out its bytes in order, each
byte once, so a request's random values cost a slice of memory. A forked child never uses what
its parent read (a block read before the fork would otherwise be handed out in both): every
thread's block is dropped at a fork. Values that guard more (people's tokens, codes, keys,
secrets) keep asking ``secrets`` directly.
"""

from __future__ import annotations

import os
import threading

BLOCK = 512
_local = threading.local()
_forks = [0]


def _forked() -> None:
    _forks[0] += 1


os.register_at_fork(after_in_child=_forked)


def token_bytes(n: int) -> bytes:
    """``n`` (at most ``BLOCK``) bytes from the OS's CSPRNG, never handed out before."""
    state = _local.__dict__
    block, offset = state.get("block"), state.get("offset", 0)
    if block is None or offset + n > BLOCK or state["forks"] != _forks[0]:
        if n > BLOCK:
            return os.urandom(n)
        block, offset = os.urandom(BLOCK), 0
        state["block"], state["forks"] = block, _forks[0]
    state["offset"] = offset + n
    return block[offset:offset + n]
