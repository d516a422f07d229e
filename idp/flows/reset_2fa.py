"""F6 reset two-step verification (seed 000): after the password, from the authenticator
step, the e-mail address once more, a mailed code, then a new authenticator enrolled (QR and
manual key) and confirmed with a code. The old secret stops working at once."""

from __future__ import annotations

from ..services import email_codes, totp
from ..services.crypto import encrypt_text
from .base import Context

PURPOSE = "reset_2fa"


class ResetTwoFactorSteps:
    """The F6 states of the login flow; ``LoginFlow`` joins them into its graph."""

    TRANSITIONS = {
        "totp": {"reset_email"},  # the "How do I set up two-step verification again?" link
        "reset_email": {"reset_code"},
        "reset_code": {"totp_enroll", "reset_code"},
    }
    ACTIONS = {"totp": {"reset_2fa": "reset_email"}, "reset_code": {"resend": "reset_code"}}
    LINKED = {"reset_2fa"}

    def step_reset_email(self, form, ctx: Context) -> str:
        self._send_code_to_typed_address(form, ctx, PURPOSE)
        return "reset_code"

    def resend_reset_code(self, ctx: Context) -> None:
        account = self.account
        email_codes.issue_email_code(account.email, PURPOSE, account=account, flow_id=self.id, locale=ctx.locale,
                                     ip=ctx.ip)

    def step_reset_code(self, form, ctx: Context) -> str:
        account = self.account
        email_codes.verify_email_code(account.email, PURPOSE, form.get("email_code", ""), flow_id=self.id,
                                      ip=ctx.ip, account=account)
        # Enrolment replaces the old secret (accounts.replace_totp), which works until then.
        self.update_data(pending_totp=encrypt_text(totp.new_secret(), "pending-totp"))
        return "totp_enroll"
