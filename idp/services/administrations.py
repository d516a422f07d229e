"""Administrations, firms, memberships, firm access and connector users."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models import Account, Administration, ConnectorUser, FirmClient, Membership
from . import audit

ROLES = ("owner", "accountant", "employee")
_ALPHABET = string.ascii_uppercase + string.digits
# Firm codes are read aloud and typed from paper: no 0/O or 1/I to confuse.
FIRM_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
FIRM_CODE_LENGTH = 8
# The role a firm's owners and accountants have in a client's administration the firm may access.
FIRM_ACCESS_ROLE = "accountant"


def new_connector_username() -> str:
    """Like U4BBGA0008: 'U', five capitals or digits, four digits; unique."""
    for _ in range(20):
        candidate = "U" + "".join(secrets.choice(_ALPHABET) for _ in range(5)) + f"{secrets.randbelow(10**4):04d}"
        if db.session.scalar(select(ConnectorUser.id).where(ConnectorUser.username == candidate)) is None:
            return candidate
    raise RuntimeError("could not find a free connector username")


def create_company(name: str, owner: Account, *, plan: str = "basic", firm: Administration | None = None) -> Administration:
    """A new administration with its owner, the inviting firm's access and its connector user.
    Adds to the caller's transaction; the caller commits once."""
    administration = Administration(name=name.strip(), kind="company", plan=plan)
    db.session.add(administration)
    db.session.flush()
    db.session.add(Membership(account_id=owner.id, administration_id=administration.id, role="owner"))
    if firm is not None:
        db.session.add(FirmClient(firm_id=firm.id, administration_id=administration.id))
    db.session.add(ConnectorUser(administration_id=administration.id, username=new_connector_username()))
    db.session.flush()
    return administration


def record_firm_link(action: str, firm: Administration, administration: Administration, *, actor: str,
                     ip: str | None, **detail) -> None:
    """A firm's access to a client's administration given or taken (``firm.linked`` or
    ``firm.unlinked``): who, which firm, which administration, and the role its people get there;
    ``via`` says how when it was not the client's own access page (signup, invitation)."""
    audit.record(action, actor=actor, subject=firm.id, ip=ip, administration=administration.id, firm=firm.name,
                 role=FIRM_ACCESS_ROLE, **detail)


def new_firm_code() -> str:
    """Eight characters (40 bits, too many to guess behind the sign-up's CAPTCHA and limits); unique."""
    for _ in range(20):
        candidate = "".join(secrets.choice(FIRM_CODE_ALPHABET) for _ in range(FIRM_CODE_LENGTH))
        if db.session.scalar(select(Administration.id).where(Administration.firm_code == candidate)) is None:
            return candidate
    raise RuntimeError("could not find a free firm code")


def create_firm(name: str) -> Administration:
    firm = Administration(name=name.strip(), kind="firm", firm_code=new_firm_code())
    db.session.add(firm)
    db.session.flush()
    return firm


def add_member(account: Account, administration: Administration, role: str) -> Membership:
    existing = db.session.scalar(
        select(Membership).where(Membership.account_id == account.id, Membership.administration_id == administration.id)
    )
    if existing is not None:
        return existing
    membership = Membership(account_id=account.id, administration_id=administration.id, role=role)
    db.session.add(membership)
    db.session.flush()
    return membership


def find(identifier: str) -> Administration | None:
    """An administration by id, or by its name when that name is unique."""
    found = db.session.get(Administration, identifier)
    if found is not None:
        return found
    named = list(db.session.scalars(select(Administration).where(Administration.name == identifier).limit(2)))
    return named[0] if len(named) == 1 else None


def firm_clients(firm: Administration) -> list[Administration]:
    return list(
        db.session.scalars(
            select(Administration)
            .join(FirmClient, FirmClient.administration_id == Administration.id)
            .where(FirmClient.firm_id == firm.id)
            .order_by(Administration.name)
        )
    )


@dataclass(frozen=True)
class Reach:
    """An administration a person may work in, with their role there; ``via`` is the firm
    through which an accountant reaches a client's administration."""

    administration: Administration
    role: str
    via: Administration | None = None


def reachable(account: Account) -> list[Reach]:
    """Own memberships, and for an owner or accountant of a firm every client administration
    of that firm (role accountant); read afresh, so a change of access shows at once."""
    seen: dict[str, Reach] = {}
    for m in account.memberships:
        seen[m.administration.id] = Reach(m.administration, m.role)
    for firm in managed_firms(account):
        for client in firm_clients(firm):
            seen.setdefault(client.id, Reach(client, FIRM_ACCESS_ROLE, via=firm))
    return sorted(seen.values(), key=lambda r: (r.administration.name.lower(), r.administration.id))


def accessible(account: Account) -> list[dict]:
    """The ``administrations`` claim: ``[{"id", "name", "role"}]`` (CONTRACT section 4)."""
    return [{"id": r.administration.id, "name": r.administration.name, "role": r.role} for r in reachable(account)]


def is_firm_accountant(account: Account, firm: Administration) -> bool:
    return firm.kind == "firm" and any(
        m.administration_id == firm.id and m.role in ("owner", "accountant") for m in account.memberships
    )


def firm_managed_by(account: Account, firm_id: str) -> Administration | None:
    """The firm with this id, if ``account`` may manage its invitations; None otherwise."""
    firm = db.session.get(Administration, firm_id) if isinstance(firm_id, str) and len(firm_id) <= 64 else None
    return firm if firm is not None and is_firm_accountant(account, firm) else None


def owners(administration: Administration) -> list[Account]:
    return list(
        db.session.scalars(
            select(Account)
            .join(Membership, Membership.account_id == Account.id)
            .where(Membership.administration_id == administration.id, Membership.role == "owner")
            .order_by(Membership.created_at)
        )
    )


def managed_firms(account: Account) -> list[Administration]:
    """The firms whose client management this person may use (owner or accountant)."""
    firms = [m.administration for m in account.memberships
             if m.administration.kind == "firm" and m.role in ("owner", "accountant")]
    return sorted(firms, key=lambda f: (f.name.lower(), f.id))


def owned_connectors(account: Account) -> list:
    """The connector users of the administrations this person owns."""
    return [m.administration.connector for m in account.memberships
            if m.role == "owner" and m.administration.connector is not None]


def get(administration_id) -> Administration | None:
    if not isinstance(administration_id, str) or not administration_id or len(administration_id) > 64:
        return None
    return db.session.get(Administration, administration_id)


def membership_of(account: Account, administration: Administration) -> Membership | None:
    return db.session.scalar(
        select(Membership).where(Membership.account_id == account.id, Membership.administration_id == administration.id)
    )


def lock(administration: Administration) -> None:
    """Serialise changes of one administration's access (PostgreSQL row lock; SQLite
    writes are serialised anyway), so two owners removing each other keep one owner."""
    db.session.execute(select(Administration.id).where(Administration.id == administration.id).with_for_update())
