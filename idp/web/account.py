"""The signed-in person's own pages: the start page and "my details" at /account."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from ..errors import DomainError
from ..extensions import limiter
from ..services import accounts, administrations, passkeys, password_policy
from . import browser, caller, errors, live_password
from .login import start_for

bp = Blueprint("account", __name__)

# What a change of one's details (web/details.py) says after its redirect here (?done=<key>).
DONE = {"name": _l("Your name has been changed."),
        "email": _l("Your e-mail address has been changed. Sign in with the new address from now on.")}


@bp.route("/")
def index():
    if browser.current_sso() is not None:
        return redirect(url_for("account.home"))
    return render_template("index.html")


def _page(sso, *, message=None, status=200, **shown):
    account = sso.account
    return render_template(
        "account.html", account=account, administrations=administrations.reachable(account), sso=sso,
        firms=administrations.managed_firms(account), connectors=administrations.owned_connectors(account),
        rules=password_policy.RULES, message=message, connector_portal=connector_portal_url(),
        passkey_count=passkeys.count(account), **shown,
    ), status


def connector_portal_url():
    """The connector password portal, where it exists."""
    return url_for("connectors.start") if "connectors.start" in current_app.view_functions else None


@bp.route("/account")
def home():
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("account.home"))
    return _page(sso, message=gettext("Your password has been changed.") if request.args.get("changed") else
                 DONE.get(request.args.get("done", "")))


@bp.route("/account/password", methods=["POST"])
@limiter.limit(caller.login_limit)
def change_password():
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("account.home"))
    try:
        accounts.change_password(sso.account, request.form.get("current_password", ""),
                                 request.form.get("totp_code", ""), request.form.get("password", ""),
                                 request.form.get("password_confirm", ""), ip=caller.client_ip(), session=sso,
                                 locale=caller.context().locale)
    except DomainError as err:
        return _page(sso, status=err.status, **errors.shown(err))
    # The form's address ends in #change-password, which a redirect keeps unless it names its own:
    # the page opens at its top, where the confirmation is.
    return redirect(url_for("account.home", changed=1, _anchor="main"))


@bp.route("/account/password-check", methods=["POST"])
@limiter.limit(live_password.LIMIT)
def password_check():
    sso = browser.current_sso()
    if sso is None:
        abort(401)
    return live_password.verdict(sso.account.email, sso.account.name)


@bp.route("/signin")
def signin():
    return start_for(url_for("account.home"), login_hint=request.args.get("login_hint"))
