"""F1 and F2: invitations to a new (or existing) administration, and their acceptance."""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from .. import clock
from ..errors import InvalidInput, InvitationNotResendable, InvitationStillOpen, InvitationUnusable, NoOpenInvitation
from ..extensions import db
from ..models import Account, Administration, Invitation
from . import accounts, administrations, audit, mailer
from .crypto import token_hash

PLANS = {"basic": _l("Basic"), "plus": _l("Plus")}


def _lifetime() -> dt.timedelta:
    return dt.timedelta(seconds=current_app.config["INVITATION_LIFETIME"])


def _url(token: str) -> str:
    return f"{current_app.config['ISSUER']}/invitation/{token}"


def _mail_context(invitation: Invitation, url: str, inviter: str) -> dict:
    return {
        "name": invitation.name,
        "administration": invitation.target.name if invitation.target else invitation.administration_name,
        "firm": invitation.firm.name if invitation.firm else None,
        "inviter": inviter,
        "role": invitation.role,
        "url": url,
        "days": _lifetime().days,
        # An address with an account signs in to accept; any other creates its account.
        "existing": accounts.find_by_email(invitation.email) is not None,
    }


def preview(email: str, name: str, administration_name: str, firm: Administration | None, inviter: str, locale: str) -> str:
    """The text of the invitation mail as it will be sent (with a placeholder link)."""
    accounts.normalize_email(email)
    invitation = Invitation(email=email, name=name, administration_name=administration_name, firm=firm, role="owner")
    _, text, _ = mailer.render("invitation", locale, **_mail_context(invitation, _url("…"), inviter))
    return text


def create(
    email: str,
    name: str,
    administration_name: str,
    *,
    role: str = "owner",
    firm: Administration | None = None,
    target: Administration | None = None,
    plan: str = "basic",
    actor: str,
    inviter: str,
    locale: str = "nl",
    ip: str | None = None,
) -> tuple[Invitation, str]:
    email = accounts.normalize_email(email)
    name = (name or "").strip()[:200]
    administration_name = (administration_name or "").strip()
    if role not in administrations.ROLES:
        raise InvalidInput(_l("Unknown role."))
    if target is None:
        if role != "owner":
            raise InvalidInput(_l("An accountant or employee joins an existing administration."))
        if not administration_name or len(administration_name) > 200:
            raise InvalidInput(_l("Enter the name of the administration (at most 200 characters)."))
    if plan not in PLANS:
        raise InvalidInput(_l("Unknown plan."))
    duplicate = open_for(email, firm=firm, target=target, administration_name=administration_name)
    if duplicate is not None:
        raise InvitationStillOpen(duplicate)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    invitation = Invitation(
        email=email,
        name=name,
        administration_name=administration_name or (target.name if target else ""),
        plan=plan,
        role=role,
        firm=firm,
        firm_id=firm.id if firm else None,
        target=target,
        target_id=target.id if target else None,
        token_hash=token_hash(token),
        locale=locale if locale in current_app.config["LANGUAGES"] else "nl",
        created_by=actor,
        expires_at=now + _lifetime(),
        sent_at=now,
    )
    db.session.add(invitation)
    db.session.flush()
    url = _url(token)
    mailer.queue(email, "invitation", invitation.locale, **_mail_context(invitation, url, inviter))
    audit.record("invitation.created", actor=actor, subject=email, ip=ip, invitation=invitation.id, role=role,
                 firm=invitation.firm_id)
    return invitation, url


def waiting():
    """The invitations still waiting for their answer: not accepted, not withdrawn, not expired."""
    return select(Invitation).where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
                                    Invitation.expires_at > clock.now())


def open_for(email: str, *, firm: Administration | None, target: Administration | None,
             administration_name: str) -> Invitation | None:
    """The open invitation of ``email`` to the same administration, if there is one: to join
    ``target``, or (no target) to create ``administration_name`` from the same firm."""
    query = waiting().where(func.lower(Invitation.email) == email.lower())
    if target is not None:
        query = query.where(Invitation.target_id == target.id)
    else:
        query = query.where(Invitation.target_id.is_(None),
                            func.lower(Invitation.administration_name) == administration_name.lower(),
                            Invitation.firm_id == firm.id if firm is not None else Invitation.firm_id.is_(None))
    return db.session.scalars(query.order_by(Invitation.created_at.desc()).limit(1)).first()


def open_to_join(administration: Administration, invitation_id: str) -> Invitation:
    """The open invitation with this id to join ``administration``, or NoOpenInvitation."""
    invitation = get(invitation_id)
    if invitation is None or invitation.target_id != administration.id:
        raise NoOpenInvitation()
    ensure_open(invitation)
    return invitation


def ensure_open(invitation: Invitation) -> None:
    """NoOpenInvitation unless the invitation still waits for its answer."""
    if invitation.status(clock.now()) != "sent":
        raise NoOpenInvitation()


def of_firm(firm: Administration, invitation_id: str) -> Invitation | None:
    """One of the firm's own invitations (None for another firm's or an unknown id)."""
    invitation = get(invitation_id)
    return invitation if invitation is not None and invitation.firm_id == firm.id else None


def resend(invitation: Invitation, *, actor: str, inviter: str, ip: str | None = None, reason: str | None = None) -> str:
    """A fresh link, valid 14 days from now; the old link stops working."""
    state = invitation.status(clock.now())
    if state in ("accepted", "revoked"):
        raise InvitationNotResendable(state)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    invitation.token_hash = token_hash(token)
    invitation.expires_at = now + _lifetime()
    invitation.sent_at = now
    url = _url(token)
    mailer.queue(invitation.email, "invitation", invitation.locale, **_mail_context(invitation, url, inviter))
    audit.record("invitation.resent", actor=actor, subject=invitation.email, ip=ip, reason=reason, invitation=invitation.id)
    return url


def revoke(invitation: Invitation, *, actor: str, ip: str | None = None, reason: str | None = None) -> None:
    state = invitation.status(clock.now())
    if state == "accepted":
        raise InvitationUnusable(state)
    if invitation.revoked_at is None:
        invitation.revoked_at = clock.now()
    audit.record("invitation.revoked", actor=actor, subject=invitation.email, ip=ip, reason=reason, invitation=invitation.id)


def get(invitation_id: str) -> Invitation | None:
    if not isinstance(invitation_id, str) or len(invitation_id) > 64:
        return None
    return db.session.get(Invitation, invitation_id)


def by_token(token: str) -> Invitation:
    """The usable invitation behind a link, or InvitationUnusable saying why not."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise InvitationUnusable("unknown")
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
    if invitation is None:
        raise InvitationUnusable("unknown")
    ensure_usable(invitation)
    return invitation


def ensure_usable(invitation: Invitation) -> None:
    state = invitation.status(clock.now())
    if state != "sent":
        raise InvitationUnusable(state)


def for_firm(firm: Administration) -> list[Invitation]:
    return list(
        db.session.scalars(select(Invitation).where(Invitation.firm_id == firm.id).order_by(Invitation.created_at.desc()))
    )


def accept(invitation: Invitation, *, account: Account | None = None, password_hash: str | None = None,
           ip: str | None = None, email_verified: bool = False) -> Account:
    """Everything the acceptance creates, in the caller's single transaction: the account
    (unless it exists; ``email_verified`` when the acceptance proved the address with a code),
    the administration, the owner membership, the inviting firm's access and the connector
    user; for an existing administration (an accountant, an employee, a further owner), the
    membership only."""
    ensure_usable(invitation)
    now = clock.now()
    if account is None:
        if accounts.find_by_email(invitation.email) is not None:
            raise InvitationUnusable("account_exists")
        account = Account(email=invitation.email, name=invitation.name, password_hash=password_hash, password_changed_at=now,
                          email_verified=email_verified)
        db.session.add(account)
        db.session.flush()
        audit.record("account.created", actor=account.id, account=account, ip=ip, via="invitation")
    if invitation.target is None:
        administration = administrations.create_company(
            invitation.administration_name, account, plan=invitation.plan, firm=invitation.firm
        )
        if invitation.firm is not None:
            administrations.record_firm_link("firm.linked", invitation.firm, administration, actor=account.id, ip=ip,
                                             via="invitation")
    else:
        administration = invitation.target
        administrations.add_member(account, administration, invitation.role)
    invitation.accepted_at = now
    invitation.account_id = account.id
    invitation.administration_id = administration.id
    audit.record("invitation.accepted", actor=account.id, account=account, ip=ip, invitation=invitation.id,
                 administration=administration.id)
    db.session.flush()
    return account
