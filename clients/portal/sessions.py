"""Server-side sessions for the portal.

Tokens and claims stay on the server; the browser only holds a random session id.
A cookie session would not do: an accountant's ID token lists every client
administration, and the token set can outgrow the browser's 4 KB cookie limit.

The store lives in the process's memory, which suits the single-process demo
(``python -m clients.portal``): a restart signs everybody out of the portal.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid: str | None = None):
        def on_update(self):
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.modified = False
        self.rotate_id = False

    def rotate(self) -> None:
        """Give the session a new id when it is saved (use after a sign-in)."""
        self.rotate_id = True
        self.modified = True


class MemorySessionInterface(SessionInterface):
    def __init__(self, idle_seconds: int = 8 * 3600, max_sessions: int = 10_000):
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._store: dict[str, tuple[float, dict]] = {}

    def _purge(self, now: float) -> None:
        for sid in [sid for sid, (expires, _) in self._store.items() if expires < now]:
            del self._store[sid]
        while len(self._store) >= self.max_sessions:
            oldest = min(self._store, key=lambda sid: self._store[sid][0])
            del self._store[oldest]

    def open_session(self, app, request):
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid:
            now = time.time()
            with self._lock:
                entry = self._store.get(sid)
                if entry and entry[0] >= now:
                    # sliding expiry: every request keeps the session alive
                    self._store[sid] = (now + self.idle_seconds, entry[1])
                    return ServerSession(copy.deepcopy(entry[1]), sid=sid)
        return ServerSession()

    def save_session(self, app, session, response):
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if not session:
            if session.sid:
                with self._lock:
                    self._store.pop(session.sid, None)
                response.delete_cookie(name, domain=domain, path=path)
            return
        if not session.modified and session.sid:
            return
        now = time.time()
        with self._lock:
            if session.sid and session.rotate_id:
                self._store.pop(session.sid, None)
            if not session.sid or session.rotate_id:
                session.sid = secrets.token_urlsafe(32)
                session.rotate_id = False
            self._purge(now)
            self._store[session.sid] = (now + self.idle_seconds, copy.deepcopy(dict(session)))
        response.set_cookie(
            name,
            session.sid,
            domain=domain,
            path=path,
            httponly=self.get_cookie_httponly(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )
