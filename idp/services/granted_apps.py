"""The applications a person has granted access (the security centre): what each may see,
since when, when it last got tokens; and withdrawing that access.

"Last used" is when the app last got tokens for the person (a code exchange or a refresh):
the `issued_at` of the newest token row, which that token request writes anyway. Nothing is
written at the token endpoint for it, and an app that stays away longer than its tokens
live shows no "last used" once the expired tokens are pruned."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, or_, select

from .. import clock
from ..errors import AppNotFound
from ..extensions import db
from ..models import Account, Client, Grant, Token
from ..models.oauth import localized_name
from . import audit, consents, tokens


@dataclass
class GrantedApp:
    client_id: str
    name: str
    first_party: bool
    scopes: set[str] = field(default_factory=set)
    first_granted: dt.datetime | None = None
    last_used: dt.datetime | None = None
    localized_names: dict = field(default_factory=dict)

    def display_name(self, locale: str | None) -> str:
        """The name in the page's language where the client registered one (Client.display_name)."""
        return localized_name(self.name, self.localized_names, locale)

    def granted_at(self, when: dt.datetime) -> None:
        if self.first_granted is None or when < self.first_granted:
            self.first_granted = when


def _live_tokens(account_id: str, now: dt.datetime) -> list[Token]:
    """The person's tokens that an app can still use: an access token that has not expired or
    a refresh token that has not been used, in a family that was not revoked."""
    recent = now - dt.timedelta(seconds=current_app.config["ACCESS_TOKEN_LIFETIME"])
    rows = db.session.scalars(
        select(Token)
        .join(Grant, Grant.id == Token.grant_id)
        .where(Token.account_id == account_id, Token.revoked_at.is_(None), Grant.revoked_at.is_(None),
               or_(Token.refresh_expires_at > now, Token.issued_at > recent))
    )
    return [t for t in rows if (not t.is_revoked() and not t.is_expired())
            or (t.refresh_token_hash is not None and t.is_refresh_usable())]


def for_account(account: Account) -> list[GrantedApp]:
    """Every app with access to the person's account: a consent (third-party apps) or a token
    it can still use (first-party apps too), by name."""
    apps: dict[str, GrantedApp] = {}

    def app_of(client: Client) -> GrantedApp:
        if client.id not in apps:
            apps[client.id] = GrantedApp(client_id=client.id, name=client.name, first_party=client.first_party,
                                         localized_names=dict(client.localized_names or {}))
        return apps[client.id]

    for consent in consents.of(account.id):
        client = db.session.get(Client, consent.client_id)
        if client is not None:
            app = app_of(client)
            app.scopes |= set(consent.scope.split())
            app.granted_at(consent.granted_at)
    for token in _live_tokens(account.id, clock.now()):
        app = app_of(token.client)
        app.scopes |= set(token.scope.split())
        app.granted_at(token.grant.created_at)
    if apps:
        last_used = db.session.execute(
            select(Token.client_id, func.max(Token.issued_at))
            .where(Token.account_id == account.id, Token.client_id.in_(apps))
            .group_by(Token.client_id)
        ).all()
        for client_id, when in last_used:
            apps[client_id].last_used = when
    return sorted(apps.values(), key=lambda a: (a.name.lower(), a.client_id))


def revoke(account: Account, client_id: str, *, ip: str | None) -> GrantedApp:
    """Withdraw the app's access at once: the consent ends (a third-party app asks again next
    time), and every grant and token of the person to the app, refresh tokens included."""
    app = next((a for a in for_account(account) if a.client_id == client_id), None)
    if app is None:
        raise AppNotFound()
    withdrawn = consents.withdraw(account.id, app.client_id)
    revoked = tokens.revoke_for_client(account.id, app.client_id)
    audit.record("app.revoked", actor=account.id, account=account, ip=ip, client=app.client_id,
                 consents_withdrawn=withdrawn, tokens_revoked=revoked)
    return app
