"""F8 access management (seed 003 "Toegangsbeheer", seed 004 "extra gebruikers"): the owners
of an administration give e-mail addresses access with a role, and take it away again."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..errors import AlreadyHasAccess, InvalidEmail, InvalidInput, LastOwner, NoAccessToRemove, NotOwner, UnknownAdministration
from ..extensions import db
from ..models import Account, Administration, Invitation, Membership
from . import accounts, administrations, audit, invitations, mailer

# The roles an owner gives: colleagues (employee), the accountant, and further owners.
GRANTABLE = ("accountant", "employee", "owner")


@dataclass(frozen=True)
class Member:
    """Someone with access to an administration, or an address invited and not there yet."""

    email: str
    name: str
    role: str
    since: dt.datetime
    invited_until: dt.datetime | None = None
    invitation_id: str | None = None

    @property
    def invited(self) -> bool:
        return self.invited_until is not None


def owned_by(account: Account, administration_id) -> Administration:
    """The administration with this id, provided ``account`` owns it. A stranger learns
    nothing (UnknownAdministration, as for an id that does not exist); a member who is
    not an owner is told that owners manage access."""
    administration = administrations.get(administration_id)
    membership = administrations.membership_of(account, administration) if administration is not None else None
    if membership is None:
        raise UnknownAdministration()
    if membership.role != "owner":
        raise NotOwner()
    return administration


def members(administration: Administration) -> list[Member]:
    """The members (owners first, then by address) and the open invitations to join."""
    rows = db.session.execute(
        select(Account, Membership)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.administration_id == administration.id)
    ).all()
    found = [Member(a.email, a.name, m.role, m.created_at) for a, m in rows]
    found.sort(key=lambda m: (m.role != "owner", m.email))
    pending = [Member(i.email, i.name, i.role, i.sent_at, invited_until=i.expires_at, invitation_id=i.id)
               for i in _pending(administration)]
    return found + sorted(pending, key=lambda m: m.email)


def _pending(administration: Administration, email: str | None = None) -> list[Invitation]:
    query = invitations.waiting().where(Invitation.target_id == administration.id)
    if email is not None:
        query = query.where(func.lower(Invitation.email) == email.lower())
    return list(db.session.scalars(query.order_by(Invitation.created_at)))


def _role(role) -> str:
    if role not in GRANTABLE:
        raise InvalidInput(_l("Unknown role. Choose accountant, employee or owner."))
    return role


def grant(administration: Administration, email: str, role: str, *, actor: str, inviter: str,
          locale: str | None, ip: str | None = None) -> str:
    """Give ``email`` access with ``role``: an account gets the membership at once and a
    mail; an address without one an invitation (the membership comes with its acceptance).
    Returns "granted" or "invited". Refuses a role that does not exist and an address that
    has access already; an open invitation is refused with InvitationStillOpen, which names
    it so that the page can offer to send it again."""
    role = _role(role)
    email = accounts.normalize_email(email)
    administrations.lock(administration)
    account = accounts.find_by_email(email)
    if account is not None:
        if administrations.membership_of(account, administration) is not None:
            raise AlreadyHasAccess()
        administrations.add_member(account, administration, role)
        mailer.queue(account.email, "access_granted", locale, name=account.name, administration=administration.name,
                     role=role, inviter=inviter, url=f"{current_app.config['ISSUER']}/account")
        status = "granted"
    else:
        invitations.create(email, "", administration.name, role=role, target=administration, actor=actor,
                           inviter=inviter, locale=locale or "nl", ip=ip)
        status = "invited"
    audit.record("access.granted", actor=actor, subject=email, account=account, ip=ip,
                 administration=administration.id, role=role, status=status)
    return status


def revoke(administration: Administration, email: str, *, actor: str, ip: str | None = None) -> str:
    """Take access away from ``email`` (or withdraw its open invitation): "revoked" or
    "withdrawn". The last owner stays. The person's next token no longer names the
    administration; the tokens they hold end as they always do."""
    try:
        email = accounts.normalize_email(email)
    except InvalidEmail:
        raise NoAccessToRemove() from None
    administrations.lock(administration)
    account = accounts.find_by_email(email)
    membership = administrations.membership_of(account, administration) if account is not None else None
    if membership is None:
        pending = _pending(administration, email)
        if not pending:
            raise NoAccessToRemove()
        return _withdraw(administration, pending, actor=actor, ip=ip)
    if membership.role == "owner" and _owners(administration) <= 1:
        raise LastOwner()
    role = membership.role
    db.session.delete(membership)
    db.session.flush()
    db.session.expire(account, ["memberships"])
    audit.record("access.revoked", actor=actor, subject=email, account=account, ip=ip,
                 administration=administration.id, role=role)
    return "revoked"


def _withdraw(administration: Administration, pending: list[Invitation], *, actor: str, ip: str | None) -> str:
    for invitation in pending:
        invitations.revoke(invitation, actor=actor, ip=ip)
    audit.record("access.revoked", actor=actor, subject=pending[-1].email, ip=ip, administration=administration.id,
                 role=pending[-1].role, status="invitation withdrawn")
    return "withdrawn"


def withdraw(administration: Administration, invitation_id: str, *, actor: str, ip: str | None = None) -> str:
    """Withdraw the open invitation with this id: "withdrawn"; its link stops working."""
    administrations.lock(administration)
    return _withdraw(administration, [invitations.open_to_join(administration, invitation_id)], actor=actor, ip=ip)


def resend(administration: Administration, invitation_id: str, *, actor: str, inviter: str,
           ip: str | None = None) -> str:
    """Send the open invitation with this id again, with a new link: "resent"."""
    invitation = invitations.open_to_join(administration, invitation_id)
    invitations.resend(invitation, actor=actor, inviter=inviter, ip=ip)
    return "resent"


def _owners(administration: Administration) -> int:
    return db.session.scalar(
        select(func.count(Membership.id)).where(Membership.administration_id == administration.id,
                                                Membership.role == "owner")
    )


def listed(administration: Administration) -> list[dict]:
    """`idp access list`: the members as ``[{"email", "role"}]``."""
    return [{"email": m.email, "role": m.role} for m in members(administration) if not m.invited]


def owns(account: Account, administration: Administration) -> bool:
    membership = administrations.membership_of(account, administration)
    return membership is not None and membership.role == "owner"
