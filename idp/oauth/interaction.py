"""The one decision after the checks (node-oidc-provider's interactions): the person signs
in, consents, or the authorization proceeds. It decides only; the caller acts on it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError

from ..models.oauth import acr_achieved
from ..services import consents
from . import claims
from .checks import AuthorizationRequest, UnmetAuthenticationRequirements

LOGIN = "login"
CONSENT = "consent"
PROCEED = "proceed"
DENIED = "denied"  # the person refused consent in the login flow just finished


@dataclass(frozen=True)
class Resumed:
    """A login flow that comes back to the authorization it was started for."""

    just_signed_in: bool
    consent: str | None  # "allow", "deny", or None when none was asked


def decide(req: AuthorizationRequest, sso, resumed: Resumed | None, *, now: dt.datetime) -> str:
    """LOGIN, CONSENT, PROCEED or DENIED; with prompt=none, LoginRequired or ConsentRequired
    is raised where the person would have to interact."""
    fresh = resumed is not None and resumed.just_signed_in
    other_person = sso is not None and req.hint_sub is not None and req.hint_sub != sso.account_id
    unmet = (sso is not None and req.acr_essential and bool(req.acr_wanted)
             and not set(req.acr_wanted) & set(acr_achieved(sso.amr)))
    if (
        sso is None
        or other_person
        or unmet
        or (not fresh and "login" in req.prompts)
        or (not fresh and req.max_age is not None and (now - sso.auth_time).total_seconds() > req.max_age)
    ):
        if fresh and unmet and not other_person:
            # The person just signed in, but not in a way the client demands (a passkey): no loop.
            raise req.error(UnmetAuthenticationRequirements, "The sign-in does not meet the essential 'acr'.")
        if "none" in req.prompts or (fresh and other_person):
            # Also when the person just signed in as someone else than the hint names: no loop.
            raise req.error(LoginRequiredError)
        return LOGIN
    client = req.grant.client
    if not client.first_party and (resumed is None or resumed.consent is None):
        scope = claims.consent_scope(req.grant.request.scope, req.params, client)
        if "consent" in req.prompts or not consents.covers(sso.account_id, client.id, scope):
            if "none" in req.prompts:
                raise req.error(ConsentRequiredError)
            return CONSENT
    if resumed is not None and resumed.consent == "deny":
        return DENIED
    return PROCEED
