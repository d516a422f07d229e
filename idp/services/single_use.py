"""Values that may be presented once (a client assertion's or a DPoP proof's `jti`),
remembered in the database, which every instance shares, until they could no longer be
accepted anyway."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..unit_of_work import kept


def first_use(model, key: str, expires_at: dt.datetime) -> bool:
    """Record ``key`` in ``model`` (a table of ``id`` and ``expires_at``); False when it was
    recorded before: a replay. Committed at once: the value is spent whatever becomes of
    the request. Of two racing requests the primary key lets one insert win."""
    if db.session.get(model, key) is not None:
        return False
    try:
        with kept():
            db.session.add(model(id=key, expires_at=expires_at))
    except IntegrityError:
        return False
    return True
