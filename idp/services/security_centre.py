"""What the security centre shows a signed-in person: the apps with access, the running
sessions (with the device each runs on) and a page of recent sign-ins and security events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..models import Account, SsoSession
from . import granted_apps, security_events, sessions, user_agents


@dataclass(frozen=True)
class ShownSession:
    handle: str
    device: user_agents.Device
    ip: str | None
    started: dt.datetime
    last_seen: dt.datetime
    current: bool


@dataclass(frozen=True)
class Overview:
    apps: list[granted_apps.GrantedApp]
    sessions: list[ShownSession]
    events: security_events.EventsPage


def _shown(session: SsoSession, current: SsoSession) -> ShownSession:
    return ShownSession(handle=session.handle, device=user_agents.describe(session.user_agent), ip=session.ip,
                        started=session.auth_time, last_seen=session.last_seen_at or session.created_at,
                        current=session.id == current.id)


def overview(account: Account, *, current: SsoSession, page: int = 1) -> Overview:
    running = sorted(sessions.active_for(account), key=lambda s: s.id != current.id)  # this one first
    return Overview(apps=granted_apps.for_account(account), sessions=[_shown(s, current) for s in running],
                    events=security_events.page_for(account, page))
