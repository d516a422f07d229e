"""The claims we release: per granted scope, and those a client asked for by name with the
`claims` parameter (OpenID Connect Core 5.5) within what the person allowed it."""

from __future__ import annotations

from authlib.oidc.core import UserInfo

from ..models.oauth import claims_parameter

# The scope that covers each claim about the person: a claim asked for by name is released
# only to a client registered for its scope, and a third-party client only with the person's
# consent to that scope (consent_scope).
CLAIM_SCOPES = {"name": "profile", "email": "email", "email_verified": "email", "administrations": "administrations"}
PLACES = ("userinfo", "id_token")


def administrations(account) -> list[dict]:
    from ..services.administrations import accessible

    return accessible(account)


def requested(params: dict, client) -> dict[str, list[str]]:
    """The claims about the person the request asks for by name, per place (userinfo,
    id_token), that this provider has and the client may be given. What the request says of
    each (`essential`, `value`, `values`) changes nothing: a claim is released or not at all,
    and never with another value than the person's."""
    asked = claims_parameter(params)
    result = {}
    for place in PLACES:
        names = asked.get(place) if isinstance(asked.get(place), dict) else {}
        given = sorted(n for n in names if n in CLAIM_SCOPES and client.get_allowed_scope(CLAIM_SCOPES[n]))
        if given:
            result[place] = given
    return result


def consent_scope(scope: str | None, params: dict, client) -> str:
    """What a person allows a client: the scope it asks for, and the scopes that cover the
    claims it asks for by name."""
    words = (scope or "").split()
    covering = {CLAIM_SCOPES[n] for names in requested(params, client).values() for n in names}
    return " ".join(words + sorted(covering - set(words)))


def user_info(account, scope: str, names=()) -> UserInfo:
    """The claims of ``scope``, and ``names`` asked for by name."""
    scopes = set((scope or "").split())
    wanted = {claim for claim, covering in CLAIM_SCOPES.items() if covering in scopes} | set(names)
    info = UserInfo(sub=account.id)
    if "name" in wanted:
        info["name"] = account.name or account.email
    if "email" in wanted:
        info["email"] = account.email
    if "email_verified" in wanted:
        info["email_verified"] = bool(account.email_verified)
    if "administrations" in wanted:
        info["administrations"] = administrations(account)
    return info


def asked_for(grant, place: str) -> list[str]:
    """The claims the grant's authorization asked for by name, for ``place``."""
    return list(((grant.claims if grant is not None else None) or {}).get(place, ()))
