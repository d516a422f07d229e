"""What the security centre shows a signed-in person: the apps with access, the running
sessions (with the device each runs on), the passkeys and a page of recent sign-ins and
security events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..models import Account, Passkey, SsoSession
from . import granted_apps, passkeys, security_events, sessions, user_agents


@dataclass(frozen=True)
class ShownSession:
    handle: str
    device: user_agents.Device
    ip: str | None
    started: dt.datetime
    last_seen: dt.datetime
    current: bool


@dataclass(frozen=True)
class ShownPasskey:
    handle: str
    name: str
    provider: str | None  # the authenticator's name, where its AAGUID is a known one
    synced: bool  # backup eligible: the provider copies it to the person's other devices
    created: dt.datetime
    last_used: dt.datetime | None


@dataclass(frozen=True)
class Overview:
    apps: list[granted_apps.GrantedApp]
    sessions: list[ShownSession]
    passkeys: list[ShownPasskey]
    # Removing the last passkey is refused when there is no authenticator app.
    totp_enrolled: bool
    events: security_events.EventsPage


def _shown_passkey(passkey: Passkey) -> ShownPasskey:
    return ShownPasskey(handle=passkey.id, name=passkey.name, provider=passkeys.provider_name(passkey),
                        synced=passkey.backup_eligible, created=passkey.created_at, last_used=passkey.last_used_at)


def _shown(session: SsoSession, current: SsoSession) -> ShownSession:
    return ShownSession(handle=session.handle, device=user_agents.describe(session.user_agent), ip=session.ip,
                        started=session.auth_time, last_seen=session.last_seen_at or session.created_at,
                        current=session.id == current.id)


def overview(account: Account, *, current: SsoSession, page: int = 1) -> Overview:
    running = sorted(sessions.active_for(account), key=lambda s: s.id != current.id)  # this one first
    return Overview(apps=granted_apps.for_account(account), sessions=[_shown(s, current) for s in running],
                    passkeys=[_shown_passkey(p) for p in passkeys.for_account(account)],
                    totp_enrolled=account.totp_enrolled, events=security_events.page_for(account, page))
