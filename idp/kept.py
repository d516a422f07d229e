"""Values made once per key and kept, a bounded number at a time.

For what is costly to make and asked for again and again with few distinct keys (derived keys,
compiled statements, checked URLs): when the bound is reached, everything kept is dropped, so a
key chosen by a client (a Host header) never makes it grow, and what is still asked for is made
again once."""

from __future__ import annotations


class Kept(dict):
    """A dict whose ``keep`` stores at most ``limit`` values; read it as any dict (``get``)."""

    def __init__(self, limit: int = 64) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key, value):
        """Store ``value`` under ``key`` (dropping everything first when full) and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
