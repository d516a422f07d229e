"""The pages of the sign-in steps: one template per state of the login flow, and what each shows
besides its form."""

from __future__ import annotations

from flask import current_app, redirect, render_template, url_for

from ..flows import LoginFlow
from ..oauth.clients import query_client
from ..services import accounts, password_policy, totp
from . import caller, headers


def _step_context(flow: LoginFlow, state: str) -> dict:
    """What the page of ``state`` shows besides the form."""
    context = {"email": flow.email or flow.data.get("login_hint") or ""}
    if state in ("totp", "forgot_totp") and flow.row.account_id is not None:
        # The address and the second factors only: one statement, no account object.
        facts = accounts.second_step_facts(flow.row.account_id)
        if facts is not None:
            return {**context, **facts}
    account = flow.account
    if account is not None:
        context["account_email"] = account.email
    if state == "totp_enroll":
        secret = flow.pending_totp_secret()
        uri = totp.provisioning_uri(secret, account.email, current_app.config["PRODUCT_NAME"])
        context.update(totp_secret=totp.format_secret(secret), totp_qr=totp.qr_data_uri(uri), totp_uri=uri)
    if state == "consent":
        context.update(scopes=(flow.data.get("consent_scope") or "").split(), account=account,
                       ends_connection=flow.consent_ends_connection())
    if state in ("forgot_email", "forgot_code"):
        context["reset_email"] = flow.data.get("reset_email") or flow.email or ""
    if state == "new_password":
        context["rules"] = password_policy.RULES
    if state == "email":
        context["passkey_required"] = flow.passkey_required()
    if state == "password":
        ctx = caller.context()
        context["captcha"] = accounts.password_step_standing(
            flow.email or "", ip=ctx.ip, device_id=ctx.device_id, device_accounts=ctx.device_accounts).needs_captcha
    return context


def page(flow: LoginFlow, status: int = 200, state: str | None = None, **shown):
    """The page of the flow's state (or of ``state``, which a link shows before the flow moves);
    ``shown``: a refusal as web.errors.shown gives it."""
    state = state or flow.state
    if state in ("resume", "done"):
        return redirect(url_for("account.home"))
    # Through the clients' short cache: a step page reads the app's name and redirect URIs only.
    client = query_client((flow.data.get("authorize") or {}).get("client_id"))
    if client is not None:
        redirect_uri = (flow.data.get("authorize") or {}).get("redirect_uri")
        headers.allow_form_targets([redirect_uri] if redirect_uri else client.redirect_uris)
    return render_template(f"steps/{state}.html", flow=flow, state=state, client=client, **shown,
                           **_step_context(flow, state)), status


def first_page(flow: LoginFlow):
    """The first step's page as the answer to the request that started the flow, one round trip
    less than a redirect to it: its forms post to the flow's own address, and reloading the page
    starts a flow again, as the request that started it does."""
    return page(flow)
