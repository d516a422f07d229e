"""Looking up clients, through a short per-process cache."""

from __future__ import annotations

import time

from ..extensions import db
from ..models import Client

# Every token request authenticates a client, and clients change rarely; a few seconds
# bound how long a changed or deleted client may still be served from memory.
CACHE_SECONDS = 5.0
CACHE_SIZE = 10000

_cache: dict[str, tuple[float, Client | None]] = {}


def query_client(client_id) -> Client | None:
    """The client (detached from the session), or None for an unknown or malformed id."""
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    now = time.monotonic()
    hit = _cache.get(client_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    client = db.session.get(Client, client_id)
    if client is not None:
        db.session.expunge(client)
    if len(_cache) > CACHE_SIZE:
        _cache.clear()
    _cache[client_id] = (now + CACHE_SECONDS, client)
    return client
