"""F3 first login and F4 login (seed 000): e-mail, password, e-mail check once,
authenticator enrolment once, authenticator code, consent where needed. The same stored
flow carries F5 (forgot_password.py) and F6 (reset_2fa.py), whose states join its graph.

Passkeys join the same steps as actions: on the e-mail step a passkey is the whole sign-in;
on the authenticator step (``totp``, the second step after the password, also for accounts
with passkeys only) and F5's ``forgot_totp`` it is the second step; on the enrolment step
one is set up instead of the authenticator app. The page asks for options first
(``passkey_options``), whose challenge the flow keeps for its state and hands back once
(``keep_challenge``, ``spend_challenge``)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .. import clock
from ..errors import DomainError, EmailMismatch, StepOutOfOrder
from ..extensions import db
from ..models import Account, Client
from ..models.oauth import ACR_MFA, ACR_PHISHING_RESISTANT, requested_acr
from ..services import accounts, consents, email_codes, passkeys, tokens, totp
from ..services.crypto import decrypt_text, encrypt_text
from .base import Context, FlowMachine, joined
from .forgot_password import ForgotPasswordSteps
from .reset_2fa import ResetTwoFactorSteps

EMAIL_CODE_PURPOSE = "verify_email"
# The steps whose page offers a passkey, and what it is there.
PASSKEY_SIGN_IN, PASSKEY_SECOND_FACTOR, PASSKEY_ENROLMENT = "sign-in", "second factor", "enrolment"
PASSKEY_STEPS = {"email": PASSKEY_SIGN_IN, "totp": PASSKEY_SECOND_FACTOR, "forgot_totp": PASSKEY_SECOND_FACTOR,
                 "totp_enroll": PASSKEY_ENROLMENT}


class LoginFlow(ForgotPasswordSteps, ResetTwoFactorSteps, FlowMachine):
    kind = "login"
    initial = "email"
    TRANSITIONS = joined(
        {
            "email": {"password", "resume"},
            "password": {"verify_email", "totp_enroll", "totp", "email"},
            "verify_email": {"email_code"},
            "email_code": {"totp_enroll", "totp", "email_code"},
            "totp_enroll": {"resume"},
            "totp": {"resume"},
            "resume": {"consent", "done"},
            "consent": {"resume"},
        },
        ForgotPasswordSteps.TRANSITIONS,
        ResetTwoFactorSteps.TRANSITIONS,
    )
    ACTIONS = joined(
        {"email": {"passkey": "resume"}, "password": {"restart": "email"}, "email_code": {"resend": "email_code"},
         "totp": {"passkey": "resume"}, "totp_enroll": {"passkey_enrol": "resume"}},
        ForgotPasswordSteps.ACTIONS,
        ResetTwoFactorSteps.ACTIONS,
    )
    LINKED = ForgotPasswordSteps.LINKED | ResetTwoFactorSteps.LINKED

    @classmethod
    def start(cls, authorize_params: dict, *, login_hint: str | None = None, ui_locales: str | None = None,
              pushed: bool = False):
        """A sign-in for an authorization request; ``pushed``: its parameters came over the back
        channel (PAR) and go back to the authorization with the flow, never in a URL."""
        return cls.create(data={"authorize": authorize_params, "login_hint": login_hint, "ui_locales": ui_locales,
                                "pushed": pushed})

    @classmethod
    def for_consent(cls, account: Account, sid: str, authorize_params: dict, ui_locales: str | None = None,
                    pushed: bool = False):
        """Consent in a session that exists already (no sign-in happens in this flow)."""
        return cls.create(state="consent", account_id=account.id,
                          data={"authorize": authorize_params, "ui_locales": ui_locales, "sid": sid, "pushed": pushed})

    # -- helpers -------------------------------------------------------------

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

    def passkey_required(self) -> bool:
        """The app demands a sign-in only a passkey gives (an essential `phr`)."""
        wanted, essential = requested_acr(self.data.get("authorize") or {})
        return essential and ACR_PHISHING_RESISTANT in wanted and ACR_MFA not in wanted

    def consent_ends_connection(self) -> bool:
        """Whether allowing the access asked for ends the person's earlier connection to the
        app (one connection per app per login): it brings a refresh token, and one exists."""
        client = self.client
        scope = client.get_allowed_scope(self.data.get("consent_scope") or "") if client is not None else ""
        if "offline_access" not in scope.split() or not client.check_grant_type("refresh_token"):
            return False
        return tokens.has_connection(self.row.account_id, client.id)

    def _after_password(self, account: Account) -> str:
        if not account.email_verified:
            return "verify_email"
        return self._second_factor(account)

    def _second_factor(self, account: Account) -> str:
        if accounts.has_second_factor(account):
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

    def _send_code_to_typed_address(self, form, ctx: Context, purpose: str) -> None:
        """The person types the account's address once more; then a code goes to it."""
        account = self.account
        try:
            typed = accounts.normalize_email(form.get("email", ""))
        except DomainError:
            raise EmailMismatch() from None
        if typed != account.email.lower():
            raise EmailMismatch()
        email_codes.issue_email_code(account.email, purpose, account=account, flow_id=self.id, locale=ctx.locale,
                                     ip=ctx.ip)

    # -- steps and actions -------------------------------------------------------

    def step_email(self, form, ctx: Context) -> str:
        email = accounts.normalize_email(form.get("email", ""))
        self.update_data(email=email)
        return "password"

    def action_restart(self, form, ctx: Context) -> None:
        self.row.account_id = None

    def step_password(self, form, ctx: Context) -> str:
        account = accounts.check_password(self.email, form.get("password", ""), ip=ctx.ip, device_id=ctx.device_id,
                                          device_accounts=ctx.device_accounts, captcha_payload=form.get("altcha"))
        self.row.account_id = account.id
        return self._after_password(account)

    def step_verify_email(self, form, ctx: Context) -> str:
        self._send_code_to_typed_address(form, ctx, EMAIL_CODE_PURPOSE)
        return "email_code"

    def action_resend(self, form, ctx: Context) -> None:
        getattr(self, f"resend_{self.row.state}")(ctx)

    def resend_email_code(self, ctx: Context) -> None:
        account = self.account
        email_codes.issue_email_code(account.email, EMAIL_CODE_PURPOSE, account=account, flow_id=self.id,
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

    def step_consent(self, form, ctx: Context) -> str:
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            raise StepOutOfOrder(_l("Choose whether to allow or deny access."))
        self.update_data(consent=decision)
        if decision == "allow":
            params = self.data.get("authorize", {})
            consents.give(self.account, params.get("client_id"), self.data.get("consent_scope", ""), ip=ctx.ip)
        return "resume"

    # -- passkeys ------------------------------------------------------------------------

    def passkey_options(self, name: str | None = None) -> dict:
        """What the browser needs for a passkey on this step; the challenge is kept for it. The
        ``name`` of a passkey to set up is checked now, before the browser makes one."""
        purpose = PASSKEY_STEPS.get(self.row.state)
        account = self.account
        if purpose is None or (purpose == PASSKEY_SECOND_FACTOR and not passkeys.count(account)):
            raise StepOutOfOrder()
        if purpose == PASSKEY_ENROLMENT:
            passkeys.check_name(name)
            # Enrolment replaces whatever was set up before (F6), so no passkey is excluded.
            options, challenge = passkeys.registration_options(account, exclude_existing=False)
        else:
            options, challenge = passkeys.authentication_options(account if purpose == PASSKEY_SECOND_FACTOR else None)
        self.keep_challenge(challenge, self.row.state)
        return options

    def action_passkey(self, form, ctx: Context) -> None:
        challenge = self.spend_challenge(self.row.state)
        credential = form.get("credential", "")
        if self.row.state == "email":
            account, method = accounts.sign_in_with_passkey(credential, challenge, ip=ctx.ip)
            self.row.account_id = account.id
            self.update_data(email=account.email)
            self._authenticated([method, "mfa"])
            return
        method = accounts.check_passkey(self.account, credential, challenge, ip=ctx.ip)
        if self.row.state == "totp":
            self._authenticated(["pwd", method, "mfa"])
        else:  # forgot_totp: the second step before the new password
            self.update_data(second_factor=method)

    def action_passkey_enrol(self, form, ctx: Context) -> None:
        method = accounts.enrol_passkey(self.account, form.get("credential", ""), self.spend_challenge(self.row.state),
                                        name=form.get("name"), ip=ctx.ip, locale=ctx.locale)
        self._authenticated(["pwd", method, "mfa"])
