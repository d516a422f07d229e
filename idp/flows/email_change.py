"""A signed-in person changes their e-mail address (security centre, seed 003): the current
password and the new address, then the code mailed to the new address. The address changes
only then; until then it waits in the flow, which ends with the flow's lifetime."""

from __future__ import annotations

from ..errors import SameEmail
from ..models import Account
from ..services import accounts, email_codes
from .base import Context, FlowMachine

PURPOSE = "change_email"


class EmailChangeFlow(FlowMachine):
    kind = "email_change"
    initial = "code"
    TRANSITIONS = {"code": {"code", "done"}}
    ACTIONS = {"code": {"resend": "code"}}

    @classmethod
    def start(cls, account: Account, form, ctx: Context) -> EmailChangeFlow:
        """Check the current password and the new address, then mail the code. Nothing is
        stored before both are right, so a refusal leaves no flow behind."""
        accounts.verify_current_password(account, form.get("current_password", ""), ip=ctx.ip)
        new_email = accounts.normalize_email(form.get("email", ""))
        if new_email == account.email.lower():
            raise SameEmail()
        flow = cls.create(account_id=account.id, data={"email": new_email})
        flow._send_code(account, ctx)
        return flow

    @property
    def email(self) -> str:
        return self.data["email"]

    def _send_code(self, account: Account, ctx: Context) -> None:
        # The same mail whether or not another account has the address: who does not hold
        # it learns nothing, and who does is told at the code step (as an invitation would).
        email_codes.issue_email_code(self.email, PURPOSE, account=account, flow_id=self.id, locale=ctx.locale,
                                     ip=ctx.ip, mail="email_change_code")

    def action_resend(self, form, ctx: Context) -> None:
        self._send_code(self.account, ctx)

    def step_code(self, form, ctx: Context) -> str:
        account = self.account
        email_codes.verify_email_code(self.email, PURPOSE, form.get("email_code", ""), flow_id=self.id, ip=ctx.ip,
                                      account=account)
        accounts.change_email(account, self.email, ip=ctx.ip, locale=ctx.locale)
        return "done"
