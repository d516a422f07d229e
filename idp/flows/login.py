"""F3 first login and F4 login (seed 000): e-mail, password, e-mail check once,
authenticator enrolment once, authenticator code, consent where needed."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .. import clock
from ..errors import DomainError, EmailMismatch, ResendTooSoon, StepOutOfOrder
from ..extensions import db
from ..models import Account, Client, Consent
from ..services import accounts, email_codes, totp
from ..services.crypto import decrypt_text, encrypt_text
from .base import Context, FlowMachine

EMAIL_CODE_PURPOSE = "verify_email"
FORGOT_PURPOSE = "reset_password"
RESET_2FA_PURPOSE = "reset_2fa"


class LoginFlow(FlowMachine):
    kind = "login"
    initial = "email"
    TRANSITIONS = {
        "email": {"password"},
        "password": {"verify_email", "totp_enroll", "totp"},
        "verify_email": {"email_code"},
        "email_code": {"totp_enroll", "totp"},
        "totp_enroll": {"resume"},
        "totp": {"resume"},
        # F5 forgotten password, from the password step.
        "forgot_email": {"forgot_code"},
        "forgot_code": {"forgot_totp", "new_password"},
        "forgot_totp": {"new_password"},
        "new_password": {"resume", "totp_enroll"},
        # F6 reset two-step verification, from the authenticator step.
        "reset_email": {"reset_code"},
        "reset_code": {"totp_enroll"},
        "resume": {"consent", "done"},
        "consent": {"resume"},
    }
    ACTIONS = {
        "password": {"restart", "forgot"},
        "email_code": {"resend"},
        "forgot_code": {"resend"},
        "totp": {"reset_2fa"},
        "reset_code": {"resend"},
    }

    @classmethod
    def start(cls, authorize_params: dict, *, login_hint: str | None = None, ui_locales: str | None = None):
        return cls.create(data={"authorize": authorize_params, "login_hint": login_hint, "ui_locales": ui_locales})

    @classmethod
    def for_consent(cls, account: Account, sid: str, authorize_params: dict, ui_locales: str | None = None):
        """Consent in a session that exists already (no sign-in happens in this flow)."""
        return cls.create(state="consent", account_id=account.id,
                          data={"authorize": authorize_params, "ui_locales": ui_locales, "sid": sid})

    # -- helpers -------------------------------------------------------------

    @property
    def account(self) -> Account | None:
        return db.session.get(Account, self.row.account_id) if self.row.account_id else None

    @property
    def client(self) -> Client | None:
        """The relying app of the authorization this sign-in serves, if any."""
        client_id = (self.data.get("authorize") or {}).get("client_id")
        return db.session.get(Client, client_id) if client_id else None

    def signed_in(self, sid: str) -> None:
        """The SSO session this sign-in started; a sign-in without an authorization ends here."""
        self.update_data(sid=sid)
        if not self.data.get("authorize"):
            self.move_to("done")

    @property
    def email(self) -> str | None:
        return self.data.get("email")

    def _after_password(self, account: Account) -> str:
        if not account.email_verified:
            return "verify_email"
        return self._second_factor(account)

    def _second_factor(self, account: Account) -> str:
        if account.totp_enrolled:
            return "totp"
        self.update_data(pending_totp=encrypt_text(totp.new_secret(), "pending-totp"))
        return "totp_enroll"

    def pending_totp_secret(self) -> str:
        if self.row.state != "totp_enroll" or not self.data.get("pending_totp"):
            raise StepOutOfOrder()
        return decrypt_text(self.data["pending_totp"], "pending-totp")

    def _authenticated(self, amr: list[str]) -> str:
        self.update_data(amr=amr, authenticated_at=clock.timestamp(), pending_totp=None)
        return "resume"

    # -- steps ---------------------------------------------------------------

    def step_email(self, form, ctx: Context) -> str:
        email = accounts.normalize_email(form.get("email", ""))
        self.update_data(email=email)
        return "password"

    def action_restart(self, form, ctx: Context) -> None:
        self.row.state = "email"
        self.row.account_id = None

    def step_password(self, form, ctx: Context) -> str:
        self.row.attempts += 1
        account = accounts.check_password(self.email, form.get("password", ""), ip=ctx.ip)
        self.row.account_id = account.id
        return self._after_password(account)

    def _send_code_to_typed_address(self, form, ctx: Context, purpose: str) -> None:
        """The person types the account's address once more; then a code goes to it."""
        account = self.account
        try:
            typed = accounts.normalize_email(form.get("email", ""))
        except DomainError:
            raise EmailMismatch() from None
        if typed != account.email.lower():
            raise EmailMismatch()
        email_codes.issue_email_code(account.email, purpose, account=account, flow_id=self.id, locale=ctx.locale, ip=ctx.ip)

    def step_verify_email(self, form, ctx: Context) -> str:
        self._send_code_to_typed_address(form, ctx, EMAIL_CODE_PURPOSE)
        return "email_code"

    def action_resend(self, form, ctx: Context) -> None:
        if self.row.state == "forgot_code":
            return self._resend_forgot(ctx)
        purpose = RESET_2FA_PURPOSE if self.row.state == "reset_code" else EMAIL_CODE_PURPOSE
        account = self.account
        email_codes.issue_email_code(account.email, purpose, account=account, flow_id=self.id,
                                     locale=ctx.locale, ip=ctx.ip)

    def step_email_code(self, form, ctx: Context) -> str:
        account = self.account
        email_codes.verify_email_code(account.email, EMAIL_CODE_PURPOSE, form.get("email_code", ""), flow_id=self.id,
                                      ip=ctx.ip, account=account)
        account.email_verified = True
        return self._second_factor(account)

    def step_totp_enroll(self, form, ctx: Context) -> str:
        accounts.replace_totp(self.account, self.pending_totp_secret(), form.get("totp_code", ""), ip=ctx.ip,
                              locale=ctx.locale)
        return self._authenticated(["pwd", "otp", "mfa"])

    def step_totp(self, form, ctx: Context) -> str:
        accounts.check_totp(self.account, form.get("totp_code", ""), ip=ctx.ip)
        return self._authenticated(["pwd", "otp", "mfa"])

    # -- F5 forgotten password ----------------------------------------------------

    def action_forgot(self, form, ctx: Context) -> None:
        self.row.state = "forgot_email"
        self.row.account_id = None

    def step_forgot_email(self, form, ctx: Context) -> str:
        """The same answer, at the same cost, whether or not the address has an account;
        only an existing account gets a mail."""
        email = accounts.normalize_email(form.get("email", ""))
        self.update_data(reset_email=email)
        self._send_forgot_code(email, ctx)
        return "forgot_code"

    def _send_forgot_code(self, email: str, ctx: Context) -> None:
        """A code for an existing, usable account; for anyone else (and when a code went out a
        moment ago) the same work without a mail, so the answer never tells."""
        account = accounts.find_by_email(email)
        if account is None or account.disabled_at is not None:
            email_codes.render_for_timing(ctx.locale)
            return
        try:
            email_codes.issue_email_code(email, FORGOT_PURPOSE, account=account, flow_id=self.id, locale=ctx.locale,
                                         ip=ctx.ip)
        except ResendTooSoon:
            email_codes.render_for_timing(ctx.locale)

    def _resend_forgot(self, ctx: Context) -> None:
        self._send_forgot_code(self.data.get("reset_email", ""), ctx)

    def step_forgot_code(self, form, ctx: Context) -> str:
        email = self.data.get("reset_email", "")
        account = accounts.find_by_email(email)
        email_codes.verify_email_code(email, FORGOT_PURPOSE, form.get("email_code", ""), flow_id=self.id, ip=ctx.ip,
                                      account=account)
        self.row.account_id = account.id
        self.update_data(email=account.email)
        account.email_verified = True
        return "forgot_totp" if account.totp_enrolled else "new_password"

    def step_forgot_totp(self, form, ctx: Context) -> str:
        accounts.check_totp(self.account, form.get("totp_code", ""), ip=ctx.ip)
        self.update_data(totp_checked=True)
        return "new_password"

    def step_new_password(self, form, ctx: Context) -> str:
        account = self.account
        accounts.set_password(account, form.get("password", ""), form.get("password_confirm", ""), ip=ctx.ip,
                              locale=ctx.locale)
        if self.data.get("totp_checked"):
            return self._authenticated(["pwd", "otp", "mfa"])
        return self._second_factor(account)

    # -- F6 reset two-step verification ---------------------------------------------

    def action_reset_2fa(self, form, ctx: Context) -> None:
        self.row.state = "reset_email"

    def step_reset_email(self, form, ctx: Context) -> str:
        self._send_code_to_typed_address(form, ctx, RESET_2FA_PURPOSE)
        return "reset_code"

    def step_reset_code(self, form, ctx: Context) -> str:
        account = self.account
        email_codes.verify_email_code(account.email, RESET_2FA_PURPOSE, form.get("email_code", ""), flow_id=self.id,
                                      ip=ctx.ip, account=account)
        self.update_data(pending_totp=encrypt_text(totp.new_secret(), "pending-totp"))
        return "totp_enroll"

    def step_consent(self, form, ctx: Context) -> str:
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            raise StepOutOfOrder(_l("Choose whether to allow or deny access."))
        self.update_data(consent=decision)
        if decision == "allow":
            params = self.data.get("authorize", {})
            db.session.add(
                Consent(account_id=self.row.account_id, client_id=params.get("client_id"), scope=self.data.get("consent_scope", ""))
            )
        return "resume"
