"""F8 an administration's access page for its owners: members, grants, removals, the firm."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from .. import config
from ..errors import DomainError
from ..extensions import limiter
from ..services import access, firms, invitations
from . import browser, caller
from .i18n import current_locale
from .login import start_for

bp = Blueprint("access", __name__, url_prefix="/administrations/<administration_id>")

CHANGE_LIMIT = config.limit("RATELIMIT_ACCESS_CHANGE")


def _signed_in(administration_id):
    """(the SSO session, None), or (None, the sign-in that comes back to the access page)."""
    sso = browser.current_sso()
    if sso is None:
        return None, start_for(url_for("access.page", administration_id=administration_id))
    return sso, None


def _page(sso, administration, *, error=None, status=200, form=None, offer=None):
    """``offer``: the open invitation a refused second one names, to send again."""
    return render_template(
        "administration/access.html", administration=administration, members=access.members(administration),
        firms=firms.linked(administration), account=sso.account, roles=access.GRANTABLE, error=error,
        form=form or {}, done=request.args.get("done"), shown_code=firms.shown_code, offer=offer,
    ), status


@bp.route("/access", methods=["GET"])
def page(administration_id):
    sso, redirect_to = _signed_in(administration_id)
    if redirect_to is not None:
        return redirect_to
    return _page(sso, access.owned_by(sso.account, administration_id))


def _change(administration_id, change, form=None):
    """Run ``change(account, administration)`` for the owner; back to the page saying what
    happened, or the page again with the refusal."""
    sso, redirect_to = _signed_in(administration_id)
    if redirect_to is not None:
        return redirect_to
    administration = access.owned_by(sso.account, administration_id)
    try:
        done = change(sso.account, administration)
    except DomainError as err:
        return _page(sso, administration, error=err.message(), status=err.status, form=form,
                     offer=getattr(err, "invitation", None))
    if not access.owns(sso.account, administration):
        return redirect(url_for("account.home"))  # the owner removed themself (another owner stays)
    return redirect(url_for("access.page", administration_id=administration.id, done=done))


@bp.route("/access", methods=["POST"])
@limiter.limit(CHANGE_LIMIT)
def grant(administration_id):
    form = {k: request.form.get(k, "").strip() for k in ("email", "role")}
    return _change(administration_id, lambda account, administration: access.grant(
        administration, form["email"], form["role"], actor=account.id, inviter=account.name or account.email,
        locale=current_locale(), ip=caller.client_ip()), form)


@bp.route("/access/revoke", methods=["POST"])
@limiter.limit(CHANGE_LIMIT)
def revoke(administration_id):
    return _change(administration_id, lambda account, administration: access.revoke(
        administration, request.form.get("email", ""), actor=account.id, ip=caller.client_ip()))


@bp.route("/access/invitations/<invitation_id>/resend", methods=["POST"])
@limiter.limit(CHANGE_LIMIT)
def resend_invitation(administration_id, invitation_id):
    return _change(administration_id, lambda account, administration: access.resend(
        administration, invitation_id, actor=account.id, inviter=account.name or account.email, ip=caller.client_ip()))


@bp.route("/access/invitations/<invitation_id>/withdraw", methods=["POST"])
@limiter.limit(CHANGE_LIMIT)
def withdraw_invitation(administration_id, invitation_id):
    """Asks first (a page naming the address); withdraws once confirmed."""
    if request.form.get("confirm") != "yes":
        return _confirm_withdrawal(administration_id, invitation_id)
    return _change(administration_id, lambda account, administration: access.withdraw(
        administration, invitation_id, actor=account.id, ip=caller.client_ip()))


def _confirm_withdrawal(administration_id, invitation_id):
    sso, redirect_to = _signed_in(administration_id)
    if redirect_to is not None:
        return redirect_to
    administration = access.owned_by(sso.account, administration_id)
    back = url_for("access.page", administration_id=administration.id)
    try:
        invitation = invitations.open_to_join(administration, invitation_id)
    except DomainError as err:
        return _page(sso, administration, error=err.message(), status=err.status)
    return render_template("withdraw_invitation.html", invitation=invitation, back=back,
                           action=url_for("access.withdraw_invitation", administration_id=administration.id,
                                          invitation_id=invitation.id))


@bp.route("/firms", methods=["POST"])
@limiter.limit(CHANGE_LIMIT)
def link_firm(administration_id):
    form = {"firm_code": request.form.get("firm_code", "").strip()}

    def link(account, administration):
        firms.link(administration, form["firm_code"], actor=account.id, ip=caller.client_ip())
        return "linked"

    return _change(administration_id, link, form)


@bp.route("/firms/<firm_id>/unlink", methods=["POST"])
@limiter.limit(CHANGE_LIMIT)
def unlink_firm(administration_id, firm_id):
    def unlink(account, administration):
        firms.unlink(administration, firm_id, actor=account.id, ip=caller.client_ip())
        return "unlinked"

    return _change(administration_id, unlink)
