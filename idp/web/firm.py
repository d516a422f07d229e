"""F8 the firm portal (seed 002 "Mijn[Kantoor]"): a firm's client administrations for its accountants."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from ..errors import NotAFirmAccountant
from ..services import firms
from . import browser
from .login import start_for

bp = Blueprint("firm", __name__)


@bp.route("/firm", methods=["GET"])
def portal():
    sso = browser.current_sso()
    if sso is None:
        return start_for(url_for("firm.portal"))
    firm, all_firms = firms.choose(sso.account, request.args.get("firm"))
    if firm is None:
        raise NotAFirmAccountant()
    q = request.args.get("q", "")[:100]
    return render_template("firm/portal.html", firm=firm, firms=all_firms, q=q, done=request.args.get("done"),
                           clients=firms.portal(firm, sso.account, q), firm_code=firms.shown_code(firm.firm_code))
