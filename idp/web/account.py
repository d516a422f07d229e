"""The signed-in person's own pages: the start page and "my details" at /account."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from ..oauth.claims import administrations
from . import common
from .login import start_for

bp = Blueprint("account", __name__)


@bp.route("/")
def index():
    if common.current_sso() is not None:
        return redirect(url_for("account.home"))
    return render_template("index.html")


@bp.route("/account")
def home():
    sso = common.current_sso()
    if sso is None:
        return start_for(url_for("account.home"))
    account = sso.account
    return render_template("account.html", account=account, administrations=administrations(account), sso=sso)


@bp.route("/signin")
def signin():
    return start_for(url_for("account.home"))
