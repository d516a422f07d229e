"""Flask's signed-cookie sessions, with the signing serializer made once per set of keys.

Flask builds a serializer (and with it its signer settings) for every request, also for
the many that carry no session cookie at all (the protocol endpoints). The serializer
holds nothing of a request, so one serves every request until the keys change."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class CookieSessions(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializer = None  # (keys it was made with, serializer)

    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        made = self._serializer
        if made is None or made[0] != keys:
            made = self._serializer = (keys, super().get_signing_serializer(app))
        return made[1]

    def open_session(self, app, request):
        if "HTTP_COOKIE" not in request.environ and self.get_signing_serializer(app) is not None:
            return self.session_class()  # no cookie at all (a protocol client): no header to parse
        return super().open_session(app, request)
