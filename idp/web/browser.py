"""The browser's side of sign-in: the flows it started and its SSO session cookie."""

from __future__ import annotations

from flask import g, session

from ..services import sessions

MAX_OWNED_FLOWS = 8


def own_flow(flow_id: str) -> None:
    """Bind a flow to this browser: only a browser that started a flow may drive it."""
    owned = [f for f in session.get("flows", []) if f != flow_id]
    session["flows"] = (owned + [flow_id])[-MAX_OWNED_FLOWS:]


def owned_flows() -> list[str]:
    value = session.get("flows", [])
    return value if isinstance(value, list) else []


def current_sso():
    """The active SSO session of this browser, or None; its "last seen" moves (now and then)."""
    if "sso" not in g:
        g.sso = sessions.get_active(session.get("sid"))
        if g.sso is not None:
            sessions.seen(g.sso)
    return g.sso


def renew_session(sid: str) -> None:
    """A new session cookie at login: nothing from before sign-in carries over but
    the flows in progress and the language."""
    keep = {k: session[k] for k in ("flows", "lang") if k in session}
    session.clear()
    session.update(keep)
    session["sid"] = sid
    session.permanent = False
    g.sso = None
