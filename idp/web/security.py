"""The security centre at /account/security: the apps with access, the running sessions and
recent sign-ins of the signed-in person, with withdraw, end and end-all-others."""

from __future__ import annotations

import functools

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from ..errors import DomainError
from ..services import granted_apps, security_centre, sessions
from . import browser, caller
from .login import start_for

bp = Blueprint("security", __name__)

# What a finished action says, in the section it concerns (?done=<key>, after the redirect).
DONE = {
    "app": ("apps", _l("The app's access has been withdrawn. It has to ask you again before it can use your account.")),
    "session": ("sessions", _l("The session has been ended. That browser has to sign in again.")),
    "others": ("sessions", _l("All your other sessions have been ended.")),
}
MAX_PAGE = 1000


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) <= MAX_PAGE else 1


def _page(sso, *, error=None, error_section=None, status=200):
    done = DONE.get(request.args.get("done", ""))
    overview = security_centre.overview(sso.account, current=sso, page=_page_number())
    return render_template("account/security.html", account=sso.account, overview=overview, error=error,
                           error_section=error_section, done_section=done[0] if done else None,
                           done=str(done[1]) if done else None), status


def _done(key: str):
    return redirect(url_for("security.page", done=key, _anchor=DONE[key][0]))


def _signed_in(view):
    """The view gets this browser's SSO session; without one, the sign-in leads back to the page."""

    @functools.wraps(view)
    def with_session():
        sso = browser.current_sso()
        if sso is None:
            return start_for(url_for("security.page"))
        return view(sso)

    return with_session


@bp.route("/account/security")
@_signed_in
def page(sso):
    return _page(sso)


@bp.route("/account/security/apps", methods=["POST"])
@_signed_in
def revoke_app(sso):
    try:
        granted_apps.revoke(sso.account, request.form.get("client_id", ""), ip=caller.client_ip())
    except DomainError as err:
        return _page(sso, error=err.message(), error_section="apps", status=err.status)
    return _done("app")


@bp.route("/account/security/sessions", methods=["POST"])
@_signed_in
def end_session(sso):
    try:
        was_current = sessions.end_own(sso.account, request.form.get("session", ""), current=sso,
                                       ip=caller.client_ip())
    except DomainError as err:
        return _page(sso, error=err.message(), error_section="sessions", status=err.status)
    if was_current:
        session.clear()
        return redirect(url_for("security.signed_out"))
    return _done("session")


@bp.route("/account/security/sessions/others", methods=["POST"])
@_signed_in
def end_other_sessions(sso):
    sessions.end_others(sso.account, current=sso, ip=caller.client_ip())
    return _done("others")


@bp.route("/account/security/signed-out")
def signed_out():
    """Where ending this browser's own session leads: it is signed out now."""
    if browser.current_sso() is not None:
        return redirect(url_for("security.page"))
    return render_template("logged_out.html", ended_here=True)
