"""F8 trial sign-up (seed 004 "Registreren"): the company's details, its bank account and the
person's e-mail address on the first page (with the CAPTCHA), the address confirmed by a mailed
code, a password, then terms and privacy with, optionally, the accountant's firm code (the
order of CONTRACT section 7). Everything waits in the flow until the last step creates it at
once; an address that has an account is told to sign in, once the code proved the mailbox is
the person's (what an invitation link tells its holder too)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..errors import CaptchaRequired, StepOutOfOrder, TermsNotAccepted
from ..extensions import db
from ..models import Administration
from ..services import accounts, captcha, email_codes, firms, password_policy, signup
from .base import Context, FlowMachine

EMAIL_CODE_PURPOSE = "signup"


class SignupFlow(FlowMachine):
    kind = "signup"
    initial = "company"
    TRANSITIONS = {
        "company": {"email_code"},
        "email_code": {"password", "existing", "email_code", "company"},
        "password": {"contract"},
        "contract": {"done"},
    }
    FINAL = {"done", "existing"}
    ACTIONS = {"email_code": {"resend": "email_code", "change_email": "company"}}
    # The pages a person goes through, for "step n of N".
    PAGES = ("company", "email_code", "password", "contract")

    @classmethod
    def start(cls):
        return cls.create()

    @property
    def email(self) -> str:
        return self.data.get("email", "")

    @property
    def firm(self) -> Administration | None:
        firm_id = self.data.get("firm_id")
        return db.session.get(Administration, firm_id) if firm_id else None

    @property
    def administration(self) -> Administration | None:
        """The administration the finished sign-up created."""
        administration_id = self.data.get("administration_id")
        return db.session.get(Administration, administration_id) if administration_id else None

    def step_company(self, form, ctx: Context) -> str:
        """The company, its bank account and the person's address, all checked at once; then a
        code to the address: the same answer and the same mail whether or not it has an account."""
        if not captcha.verify(form.get("altcha", "")):
            raise CaptchaRequired(_l("Complete the check that you are not a robot, then continue."))
        details = signup.first_page(form)
        self.update_data(**details, email_verified=False)
        email_codes.issue_email_code(self.email, EMAIL_CODE_PURPOSE, flow_id=self.id, locale=ctx.locale, ip=ctx.ip,
                                     name=details["name"])
        return "email_code"

    def action_resend(self, form, ctx: Context) -> None:
        email_codes.issue_email_code(self.email, EMAIL_CODE_PURPOSE, flow_id=self.id, locale=ctx.locale, ip=ctx.ip,
                                     name=self.data.get("name", ""))

    def step_email_code(self, form, ctx: Context) -> str:
        email_codes.verify_email_code(self.email, EMAIL_CODE_PURPOSE, form.get("email_code", ""), flow_id=self.id,
                                      ip=ctx.ip)
        self.update_data(email_verified=True)
        return "existing" if accounts.find_by_email(self.email) is not None else "password"

    def step_password(self, form, ctx: Context) -> str:
        # Only the Argon2 hash waits in the flow until the last step.
        self.update_data(password_hash=password_policy.hash_if_allowed(
            form.get("password", ""), form.get("password_confirm", ""), email=self.email, name=self.data.get("name", "")))
        return "contract"

    def step_contract(self, form, ctx: Context) -> str:
        if form.get("accept_terms") != "yes" or form.get("accept_privacy") != "yes":
            raise TermsNotAccepted()
        if not (self.data.get("email_verified") and self.data.get("password_hash") and self.data.get("company")
                and self.data.get("iban")):
            raise StepOutOfOrder()
        typed = (form.get("firm_code") or "").strip()
        firm = firms.by_code(typed) if typed else None
        account, administration = signup.create_trial(
            email=self.email, name=self.data.get("name", ""), password_hash=self.data["password_hash"],
            company=self.data["company"], iban=self.data["iban"], firm=firm, ip=ctx.ip)
        self.row.account_id = account.id
        self.update_data(password_hash=None, administration_id=administration.id, firm_id=firm.id if firm else None)
        return "done"
