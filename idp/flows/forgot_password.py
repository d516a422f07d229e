"""F5 forgotten password (seed 000): from the password step, the e-mail address, a mailed
code, the authenticator code (or a passkey) where one is set up, a new password (policy),
then back into the authorization. An unknown address gets the same answer and no mail."""

from __future__ import annotations

from ..errors import InvalidEmailCode, ResendTooSoon
from ..services import accounts, email_codes
from .base import Context

PURPOSE = "reset_password"


class ForgotPasswordSteps:
    """The F5 states of the login flow; ``LoginFlow`` joins them into its graph."""

    TRANSITIONS = {
        "password": {"forgot_email"},  # the "Forgot your password?" link
        "forgot_email": {"forgot_code"},
        "forgot_code": {"forgot_totp", "new_password", "forgot_code"},
        "forgot_totp": {"new_password"},
        "new_password": {"resume", "totp_enroll"},
    }
    ACTIONS = {"password": {"forgot": "forgot_email"}, "forgot_code": {"resend": "forgot_code"},
               "forgot_totp": {"passkey": "new_password"}}
    LINKED = {"forgot"}

    def action_forgot(self, form, ctx: Context) -> None:
        self.row.account_id = None

    def step_forgot_email(self, form, ctx: Context) -> str:
        """The same answer, at the same cost, whether or not the address has an account;
        only an existing account gets a mail."""
        email = accounts.normalize_email(form.get("email", ""))
        self.update_data(reset_email=email)
        self._send_forgot_code(email, ctx)
        return "forgot_code"

    def _send_forgot_code(self, email: str, ctx: Context, *, say_when: bool = False) -> None:
        """A code for an existing, usable account; for anyone else a decoy code that is never
        mailed, so the code step counts and answers the same (and when a code went out a
        moment ago, the same work without a mail): the answer never tells. ``say_when``:
        refuse a code asked too soon with the seconds to wait (a resend in this flow: real
        and decoy codes share one throttle, so the wait is the same for any address)."""
        account = accounts.find_by_email(email)
        try:
            if account is None or account.disabled_at is not None:
                email_codes.issue_decoy_code(email, PURPOSE, flow_id=self.id, locale=ctx.locale, ip=ctx.ip)
            else:
                email_codes.issue_email_code(email, PURPOSE, account=account, flow_id=self.id, locale=ctx.locale,
                                             ip=ctx.ip)
        except ResendTooSoon:
            email_codes.render_for_timing(ctx.locale, PURPOSE)
            if say_when:
                raise

    def resend_forgot_code(self, ctx: Context) -> None:
        self._send_forgot_code(self.data.get("reset_email", ""), ctx, say_when=True)

    def step_forgot_code(self, form, ctx: Context) -> str:
        """The account is looked up only once the code is right: until then a known and an
        unknown address (whose code is a decoy) take the same steps."""
        email = self.data.get("reset_email", "")
        email_codes.verify_email_code(email, PURPOSE, form.get("email_code", ""), flow_id=self.id, ip=ctx.ip)
        account = accounts.find_by_email(email)
        if account is None:  # a decoy code accepts nothing; kept as a guard
            raise InvalidEmailCode()
        self.row.account_id = account.id
        self.update_data(email=account.email)
        account.email_verified = True
        return "forgot_totp" if accounts.has_second_factor(account) else "new_password"

    def step_forgot_totp(self, form, ctx: Context) -> str:
        accounts.check_totp(self.account, form.get("totp_code", ""), ip=ctx.ip)
        self.update_data(second_factor="otp")
        return "new_password"

    def step_new_password(self, form, ctx: Context) -> str:
        account = self.account
        accounts.set_password(account, form.get("password", ""), form.get("password_confirm", ""), ip=ctx.ip,
                              locale=ctx.locale)
        # The second step was taken before the new password (a code, or a passkey: see LoginFlow).
        second = self.data.get("second_factor")
        if second:
            return self._authenticated(["pwd", second, "mfa"])
        return self._second_factor(account)
