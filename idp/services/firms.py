"""Accountancy firms (seed 002 "Mijn[Kantoor]", seed 003 "portaal"): the firm code clients
type to give their firm access, linking and unlinking, and the firm portal's client list."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..errors import FirmAlreadyLinked, InvalidInput, NoAccessToRemove, UnknownFirmCode
from ..extensions import db
from ..models import Account, Administration, FirmClient, Invitation
from . import administrations, invitations

_SEPARATORS = re.compile(r"[\s\-.]+")


def normalize_code(value) -> str | None:
    """The code as stored (eight capitals and digits) from what someone typed
    ("abcd-efgh", "ABCD EFGH"), or None when it cannot be a firm code."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    code = _SEPARATORS.sub("", value).upper()
    if len(code) != administrations.FIRM_CODE_LENGTH or any(c not in administrations.FIRM_CODE_ALPHABET for c in code):
        return None
    return code


def shown_code(code: str | None) -> str:
    """A firm code as pages show it: two groups of four."""
    return f"{code[:4]}-{code[4:]}" if code else ""


def by_code(value) -> Administration:
    """The firm with this code, or UnknownFirmCode (also for the code of no firm at all)."""
    code = normalize_code(value)
    firm = db.session.scalar(select(Administration).where(Administration.firm_code == code)) if code else None
    if firm is None or firm.kind != "firm":
        raise UnknownFirmCode()
    return firm


def linked(administration: Administration) -> list[FirmClient]:
    """The firms with access to a client's administration, as their links (``firm``, ``created_at``)."""
    return list(
        db.session.scalars(select(FirmClient).where(FirmClient.administration_id == administration.id)
                           .order_by(FirmClient.created_at))
    )


def link(administration: Administration, code: str, *, actor: str, ip: str | None = None) -> Administration:
    """Give the firm with ``code`` access to a company's administration (its accountants see
    it in the firm portal and in their tokens)."""
    if administration.kind != "company":
        raise InvalidInput(_l("Only a company's administration gives an accountancy firm access."))
    firm = by_code(code)
    administrations.lock(administration)
    if db.session.scalar(select(FirmClient.id).where(FirmClient.firm_id == firm.id,
                                                     FirmClient.administration_id == administration.id)):
        raise FirmAlreadyLinked()
    db.session.add(FirmClient(firm_id=firm.id, administration_id=administration.id))
    db.session.flush()
    administrations.record_firm_link("firm.linked", firm, administration, actor=actor, ip=ip)
    return firm


def unlink(administration: Administration, firm_id, *, actor: str, ip: str | None = None) -> None:
    """Take a firm's access away again."""
    administrations.lock(administration)
    row = db.session.scalar(select(FirmClient).where(FirmClient.firm_id == firm_id,
                                                     FirmClient.administration_id == administration.id)) \
        if isinstance(firm_id, str) and len(firm_id) <= 64 else None
    if row is None:
        raise NoAccessToRemove(_l("This firm has no access to this administration."))
    firm = row.firm
    db.session.delete(row)
    db.session.flush()
    administrations.record_firm_link("firm.unlinked", firm, administration, actor=actor, ip=ip)


# -- the firm portal ---------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRow:
    """One line of the firm portal's client list: an administration the firm (or the
    accountant personally) may work in, or one a pending invitation of the firm will create."""

    name: str
    owner: str
    owner_email: str
    since: dt.datetime
    access: str  # firm | personal | invited
    administration_id: str | None = None
    invited_until: dt.datetime | None = None
    invitation_id: str | None = None

    def matches(self, query: str) -> bool:
        return any(query in text.casefold() for text in (self.name, self.owner, self.owner_email))


def portal(firm: Administration, viewer: Account, query: str = "") -> list[ClientRow]:
    """The client administrations ``viewer`` works in as an accountant of ``firm``: the
    firm's clients, the administrations whose owners gave the viewer access personally,
    and the firm's invitations still waiting for their client; ``query`` filters on the
    name and the owner."""
    rows: dict[str, ClientRow] = {}
    for link_row in db.session.scalars(select(FirmClient).where(FirmClient.firm_id == firm.id)):
        rows[link_row.administration_id] = _row(link_row.administration, link_row.created_at, "firm")
    for membership in viewer.memberships:
        client = membership.administration
        if membership.role == "accountant" and client.kind == "company" and client.id not in rows:
            rows[client.id] = _row(client, membership.created_at, "personal")
    found = list(rows.values()) + [
        ClientRow(name=i.administration_name, owner=i.name, owner_email=i.email, since=i.sent_at, access="invited",
                  invited_until=i.expires_at, invitation_id=i.id)
        for i in _open_invitations(firm)
    ]
    query = (query or "").strip().casefold()[:100]
    if query:
        found = [row for row in found if row.matches(query)]
    return sorted(found, key=lambda r: (r.name.casefold(), r.access))


def _row(client: Administration, since: dt.datetime, access: str) -> ClientRow:
    owners = administrations.owners(client)
    owner = owners[0] if owners else None
    return ClientRow(name=client.name, owner=(owner.name or owner.email) if owner else "",
                     owner_email=owner.email if owner else "", since=since, access=access,
                     administration_id=client.id)


def _open_invitations(firm: Administration) -> list[Invitation]:
    """The firm's invitations to new clients that are still waiting to be accepted."""
    return list(db.session.scalars(invitations.waiting().where(Invitation.firm_id == firm.id,
                                                               Invitation.target_id.is_(None))))


def choose(account: Account, firm_id: str | None) -> tuple[Administration | None, list[Administration]]:
    """The firm the portal shows (the one asked for, else the first by name) and every firm
    ``account`` is an accountant of, for the switcher."""
    firms = administrations.managed_firms(account)
    chosen = next((f for f in firms if f.id == firm_id), firms[0] if firms else None)
    return chosen, firms
