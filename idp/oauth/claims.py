"""The claims we release per scope."""

from __future__ import annotations

from authlib.oidc.core import UserInfo


def administrations(account) -> list[dict]:
    from ..services.administrations import accessible

    return accessible(account)


def user_info(account, scope: str) -> UserInfo:
    scopes = set((scope or "").split())
    info = UserInfo(sub=account.id)
    if "profile" in scopes:
        info["name"] = account.name or account.email
    if "email" in scopes:
        info["email"] = account.email
        info["email_verified"] = bool(account.email_verified)
    if "administrations" in scopes:
        info["administrations"] = administrations(account)
    return info
