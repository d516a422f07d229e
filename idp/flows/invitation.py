"""F2 accept an invitation (seed 000, 1.1): address shown, mailed code, new password,
contract data with terms and privacy, confirm. An existing account signs in instead."""

from __future__ import annotations

from ..errors import StepOutOfOrder, TermsNotAccepted, WrongAccount
from ..models import Account, Invitation
from ..services import accounts, email_codes, invitations, password_policy
from .base import Context, FlowMachine

EMAIL_CODE_PURPOSE = "invitation"


class InvitationFlow(FlowMachine):
    kind = "invitation"
    initial = "intro"
    TRANSITIONS = {
        "intro": {"email_code"},
        "email_code": {"password", "email_code"},
        "password": {"contract"},
        "signin": {"contract"},
        "contract": {"done"},
    }
    ACTIONS = {"email_code": {"resend": "email_code"}}

    @classmethod
    def start(cls, invitation: Invitation):
        existing = accounts.find_by_email(invitation.email) is not None
        return cls.create(
            state="signin" if existing else "intro",
            data={"invitation_id": invitation.id, "email": invitation.email, "existing": existing},
        )

    @property
    def invitation(self) -> Invitation:
        invitation = invitations.get(self.data["invitation_id"])
        invitations.ensure_usable(invitation)
        return invitation

    @property
    def email(self) -> str:
        return self.data["email"]

    def step_intro(self, form, ctx: Context) -> str:
        self.invitation  # still usable?
        email_codes.issue_email_code(self.email, EMAIL_CODE_PURPOSE, flow_id=self.id, locale=ctx.locale, ip=ctx.ip,
                                     name=self.invitation.name)
        return "email_code"

    def action_resend(self, form, ctx: Context) -> None:
        email_codes.issue_email_code(self.email, EMAIL_CODE_PURPOSE, flow_id=self.id, locale=ctx.locale, ip=ctx.ip,
                                     name=self.invitation.name)

    def step_email_code(self, form, ctx: Context) -> str:
        email_codes.verify_email_code(self.email, EMAIL_CODE_PURPOSE, form.get("email_code", ""), flow_id=self.id, ip=ctx.ip)
        # The address is proven: the account made at the end counts it verified, so the
        # first sign-in does not ask for a second code.
        self.update_data(email_confirmed=True)
        return "password"

    def step_password(self, form, ctx: Context) -> str:
        # Only the Argon2 hash waits in the flow until the contract is confirmed.
        self.update_data(password_hash=password_policy.hash_if_allowed(
            form.get("password", ""), form.get("password_confirm", ""), email=self.email, name=self.invitation.name))
        return "contract"

    def check_signed_in(self, account: Account | None) -> None:
        """Whether the person signed in as the invited address (WrongAccount if not); moves nothing."""
        if account is None or account.email.lower() != self.email.lower():
            raise WrongAccount()

    def signed_in_as(self, account: Account | None) -> None:
        """The existing account, signed in, goes on to the contract (posted, never on a GET)."""
        if self.row.state != "signin":
            raise StepOutOfOrder()
        self.check_live()
        self.check_signed_in(account)
        self.row.account_id = account.id
        self.move_to("contract")

    def step_contract(self, form, ctx: Context) -> str:
        if form.get("accept_terms") != "yes" or form.get("accept_privacy") != "yes":
            raise TermsNotAccepted()
        invitation = self.invitation
        if self.data.get("existing"):
            account = accounts.find_by_email(self.email)
            if account is None or account.id != self.row.account_id:
                raise WrongAccount()
            invitations.accept(invitation, account=account, ip=ctx.ip)
        else:
            if not self.data.get("password_hash"):
                raise StepOutOfOrder()
            account = invitations.accept(invitation, password_hash=self.data["password_hash"], ip=ctx.ip,
                                         email_verified=bool(self.data.get("email_confirmed")))
            self.row.account_id = account.id
        self.update_data(password_hash=None)
        return "done"
