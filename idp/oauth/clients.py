"""Looking up clients, through a short per-process cache, and the browser origins registered for them."""

from __future__ import annotations

import time

from sqlalchemy import select

from ..extensions import db
from ..models import Client, ClientOrigin

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


def origin_allowed(client_id: str, origin: str) -> bool:
    """Whether pages of ``origin`` may call the protocol endpoints for this client."""
    return db.session.get(ClientOrigin, (client_id, origin)) is not None


def origin_registered(origin: str) -> bool:
    """Whether ``origin`` is registered for any client."""
    return db.session.scalar(select(ClientOrigin.client_id).where(ClientOrigin.origin == origin).limit(1)) is not None
