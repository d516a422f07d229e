"""The security centre at /account/security: the apps with access, the running sessions, the
passkeys and recent sign-ins of the signed-in person, with withdraw, end and end-all-others,
add and remove."""

from __future__ import annotations

import functools

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from ..errors import DomainError
from ..extensions import limiter
from ..flows import PasskeyRegistrationFlow
from ..services import granted_apps, passkeys, security_centre, sessions
from . import browser, caller, headers
from .login import start_for

bp = Blueprint("security", __name__)

# What a finished action says, in the section it concerns (?done=<key>, after the redirect).
DONE = {
    "app": ("apps", _l("The app's access has been withdrawn. It has to ask you again before it can use your account.")),
    "session": ("sessions", _l("The session has been ended. That browser has to sign in again.")),
    "others": ("sessions", _l("All your other sessions have been ended.")),
    "passkey_added": ("passkeys", _l("The passkey has been added. You can sign in with it now.")),
    "passkey_removed": ("passkeys", _l("The passkey has been removed. It no longer signs you in.")),
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


def _refusals_in(section: str):
    """A refusal of the view's action shows on the page, in the section it concerns."""

    def decorate(view):
        @functools.wraps(view)
        def showing_refusals(sso):
            try:
                return view(sso)
            except DomainError as err:
                return _page(sso, error=err.message(), error_section=section, status=err.status)

        return showing_refusals

    return decorate


@bp.route("/account/security")
@_signed_in
def page(sso):
    return _page(sso)


@bp.route("/account/security/apps", methods=["POST"])
@_signed_in
@_refusals_in("apps")
def revoke_app(sso):
    granted_apps.revoke(sso.account, request.form.get("client_id", ""), ip=caller.client_ip())
    return _done("app")


@bp.route("/account/security/sessions", methods=["POST"])
@_signed_in
@_refusals_in("sessions")
def end_session(sso):
    was_current = sessions.end_own(sso.account, request.form.get("session", ""), current=sso, ip=caller.client_ip())
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


# -- passkeys ---------------------------------------------------------------------------


def _fresh(sso) -> bool:
    return sessions.signed_in_within(sso, current_app.config["PASSKEY_FRESH_LOGIN"])


@bp.route("/account/security/passkeys/sign-in")
def passkey_sign_in():
    """Adding a passkey needs a fresh sign-in: sign in again, then back to the passkeys."""
    sso = browser.current_sso()
    return start_for(url_for("security.page", _anchor="passkeys"), login_hint=sso.account.email if sso else None)


@bp.route("/account/security/passkeys/options", methods=["POST"])
@limiter.limit(caller.login_limit)
def passkey_options():
    """The options for the browser to create a passkey (JSON), in a new flow that keeps the
    challenge; without a fresh sign-in, where to sign in again."""
    sso = browser.current_sso()
    if sso is None or not _fresh(sso):
        return headers.no_store(jsonify(sign_in=url_for("security.passkey_sign_in"))), 401
    try:
        flow, options = PasskeyRegistrationFlow.start(sso.account, request.form.get("name"))
    except DomainError as err:
        return headers.no_store(jsonify(error=err.message())), err.status
    browser.own_flow(flow.id)
    return headers.no_store(jsonify(flow=flow.id, publicKey=options))


@bp.route("/account/security/passkeys", methods=["POST"])
@limiter.limit(caller.login_limit)
@_signed_in
@_refusals_in("passkeys")
def add_passkey(sso):
    if not _fresh(sso):
        return redirect(url_for("security.passkey_sign_in"))
    PasskeyRegistrationFlow.finish(request.form.get("flow", ""), browser.owned_flows(), sso.account, request.form,
                                   caller.context())
    return _done("passkey_added")


@bp.route("/account/security/passkeys/remove", methods=["POST"])
@_signed_in
@_refusals_in("passkeys")
def remove_passkey(sso):
    """Asks first (a page with the passkey's name); removes once confirmed."""
    if request.form.get("confirm") != "yes":
        passkey = passkeys.own(sso.account, request.form.get("passkey", ""))
        return render_template("account/passkey_remove.html", passkey=passkey)
    passkeys.remove(sso.account, request.form.get("passkey", ""), ip=caller.client_ip(), locale=caller.context().locale)
    return _done("passkey_removed")
