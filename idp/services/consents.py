"""What a person has allowed a third-party client to see: given on the consent page,
withdrawn in the security centre."""

from __future__ import annotations

from sqlalchemy import delete, select

from ..extensions import db
from ..models import Account, Consent
from . import audit


def covers(account_id: str, client_id: str, scope: str) -> bool:
    """Whether one earlier consent of this person to this client includes every scope asked for."""
    wanted = set(scope.split())
    granted = db.session.scalars(
        select(Consent.scope).where(Consent.account_id == account_id, Consent.client_id == client_id)
    )
    return any(wanted <= set(scope_.split()) for scope_ in granted)


def give(account: Account, client_id: str, scope: str, *, ip: str | None) -> None:
    """The person allowed the client these scopes (a change of access: audited)."""
    db.session.add(Consent(account_id=account.id, client_id=client_id, scope=scope))
    audit.record("consent.granted", actor=account.id, account=account, ip=ip, client=client_id, scope=scope)


def of(account_id: str) -> list[Consent]:
    return list(db.session.scalars(select(Consent).where(Consent.account_id == account_id).order_by(Consent.id)))


def withdraw(account_id: str, client_id: str) -> int:
    """The person's consents to the client end: the client asks again next time."""
    return db.session.execute(
        delete(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
    ).rowcount
