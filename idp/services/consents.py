"""What a person has allowed a third-party client to see."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Consent


def covers(account_id: str, client_id: str, scope: str) -> bool:
    """Whether one earlier consent of this person to this client includes every scope asked for."""
    wanted = set(scope.split())
    granted = db.session.scalars(
        select(Consent.scope).where(Consent.account_id == account_id, Consent.client_id == client_id)
    )
    return any(wanted <= set(scope_.split()) for scope_ in granted)
