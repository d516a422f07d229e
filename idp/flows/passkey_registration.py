"""Adding a passkey in the security centre: the browser asks for the options (a challenge the
flow keeps, for the account that asked, as long as PASSKEY_CEREMONY_TIMEOUT), creates the
passkey, and the answer is checked once against that challenge."""

from __future__ import annotations

from flask import current_app

from ..errors import FlowExpired, NoPasskeyCreated, PasskeyRequestExpired
from ..models import Account
from ..services import passkeys
from .base import Context, FlowMachine


class PasskeyRegistrationFlow(FlowMachine):
    kind = "passkey_registration"
    initial = "register"
    TRANSITIONS = {"register": {"done"}}

    @classmethod
    def start(cls, account: Account, name: str | None) -> tuple[PasskeyRegistrationFlow, dict]:
        """The flow and the options for ``navigator.credentials.create``. The name is checked
        (and kept) now, before the browser makes a passkey that a refusal would orphan."""
        name = passkeys.check_name(name)
        passkeys.check_room(account)
        options, challenge = passkeys.registration_options(account)
        flow = cls.create(account_id=account.id, data={"name": name},
                          lifetime=current_app.config["PASSKEY_CEREMONY_TIMEOUT"])
        flow.keep_challenge(challenge)
        return flow, options

    @classmethod
    def finish(cls, flow_id: str, owned: list[str], account: Account, form, ctx: Context) -> None:
        """The browser's answer, posted with the flow it belongs to."""
        if not form.get("credential"):
            raise NoPasskeyCreated()
        cls.load_for(flow_id, owned, account).advance("register", form, ctx)

    def check_live(self) -> None:
        try:
            super().check_live()
        except FlowExpired:
            raise PasskeyRequestExpired() from None

    def step_register(self, form, ctx: Context) -> str:
        challenge = self.spend_challenge()
        account = self.account
        passkeys.check_room(account)
        new = passkeys.verify_registration(account, form.get("credential", ""), challenge, ip=ctx.ip)
        passkeys.store(account, new, name=self.data.get("name") or "", ip=ctx.ip, locale=ctx.locale)
        return "done"
