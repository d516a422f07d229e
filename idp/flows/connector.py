"""F7 the connector-user password portal (seed 001): username with a CAPTCHA, the
username once more, a link mailed to the administration's owner, a new password.
The whole flow lasts ten minutes and its link works once."""

from __future__ import annotations

import secrets

from flask import current_app

from .. import clock
from ..errors import StepOutOfOrder
from ..models import ConnectorUser
from ..services import captcha, connectors, email_codes
from ..services.connectors import ConnectorResetRefused
from ..services.crypto import token_hash
from .base import Context, FlowMachine



class ConnectorResetFlow(FlowMachine):
    kind = "connector_reset"
    initial = "identify"
    TRANSITIONS = {
        "identify": {"verify"},
        "verify": {"sent"},
        "sent": {"done"},
    }

    @classmethod
    def start(cls):
        return cls.create(lifetime=current_app.config["CONNECTOR_FLOW_LIFETIME"])

    def step_identify(self, form, ctx: Context) -> str:
        solved = captcha.verify(form.get("altcha", ""))
        username = connectors.normalize(form.get("username", ""))
        if not solved or username is None:
            raise ConnectorResetRefused()
        self.update_data(username=username)
        return "verify"

    def step_verify(self, form, ctx: Context) -> str:
        """The second identification. Every refusal is the same answer after the same work."""
        again = connectors.normalize(form.get("username", ""))
        connector = connectors.find(self.data.get("username"))
        refusal = "typo" if again != self.data.get("username") else connectors.reset_refusal(connector)
        token = secrets.token_urlsafe(32)
        link = f"{current_app.config['ISSUER']}/connector-password/{token}"
        if refusal is not None:
            email_codes.render_for_timing(ctx.locale)
            connectors.record_refusal(self.data.get("username"), why=refusal, ip=ctx.ip)
            raise ConnectorResetRefused()
        self.row.link_hash = token_hash(token)
        connectors.note_reset_requested(connector, link=link, ip=ctx.ip, locale=ctx.locale)
        return "sent"

    # -- the mailed link (another browser, the owner's) --------------------------

    @classmethod
    def by_link(cls, token: str):
        """The flow behind a mailed link, usable once and only until the flow expires."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            return None
        row = cls.row_by_link(token_hash(token))
        if row is None or row.state != "sent" or row.expires_at <= clock.now():
            return None
        return cls(row)

    @property
    def connector(self) -> ConnectorUser:
        return connectors.find(self.data["username"])

    def set_password(self, form, ctx: Context) -> None:
        if self.row.state != "sent":
            raise StepOutOfOrder()
        self.check_live()
        connectors.set_password(self.connector, form.get("password", ""), form.get("password_confirm", ""),
                                ip=ctx.ip, locale=ctx.locale)
        self.move_to("done")
