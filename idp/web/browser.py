"""The browser's side of sign-in: the flows it started, its SSO session cookie, and the
app it came from."""

from __future__ import annotations

from flask import g, has_request_context, session, url_for
from flask_babel import gettext

from ..oauth.clients import query_client
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
    keep = {k: session[k] for k in ("flows", "lang", "came_from") if k in session}
    session.clear()
    session.update(keep)
    session["sid"] = sid
    session.permanent = False
    g.sso = None


def came_from(client_id: str) -> None:
    """Remember the app whose authorization request brought this browser here."""
    if session.get("came_from") != client_id:  # an unchanged session sends no new cookie
        session["came_from"] = client_id


def app_came_from():
    """The app this browser came from (a client), where known."""
    return query_client(session.get("came_from")) if has_request_context() else None


def back_link() -> tuple[str, str]:
    """(text, URL) of the way back from an error page: to the app this browser came from
    where it is known, else to the provider's start page."""
    from .i18n import current_locale

    client = app_came_from()
    if client is not None and client.home_uri:
        return gettext("Back to %(app)s", app=client.display_name(current_locale())), client.home_uri
    return gettext("Go to the start page"), url_for("account.index")
