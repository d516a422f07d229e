"""Flask's signed-cookie sessions, with the signing serializer made once per set of keys, the
signing key derived once per secret, and a cookie's signature checked once per process.

Flask builds a serializer (and with it its signer settings) for every request, also for
the many that carry no session cookie at all (the protocol endpoints). The serializer
holds nothing of a request, so one serves every request until the keys change.

itsdangerous derives the signing key from the secret (an HMAC) at every signature it makes or
checks; the derived key depends on the secret, the salt and the methods only, so it is kept.

A browser sends the same cookie with every request until the session changes (a sign-in sends
it four or five times): its signature is checked and its payload decoded the first time, and
what it held is kept by the cookie's exact value, with its timestamp, so that the age is still
checked at every request as itsdangerous checks it. Only a value that passed the check is kept;
any other value, however close, goes through itsdangerous again.
"""

from __future__ import annotations

import copy
import time

from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, TimestampSigner

from ..kept import Kept

# Derived signing keys: (secret, salt, derivation, digest) -> key.
_DERIVED = Kept()


class KeptKeySigner(TimestampSigner):
    """itsdangerous' signer, deriving each key once."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else secret_key
        if isinstance(secret, str):
            secret = secret.encode()
        found = (secret, self.salt, self.key_derivation, self.digest_method)
        key = _DERIVED.get(found)
        if key is None:  # only ever a few secrets and salts
            key = _DERIVED.keep(found, super().derive_key(secret))
        return key


class CookieSessions(SecureCookieSessionInterface):
    # Cookie values whose signature was checked, at most this many at a time (a sign-in goes
    # through four or five; the whole set is dropped when full, and a browser's next request
    # checks its cookie once more): a cookie of a few hundred bytes, some hundred kilobytes per worker.
    MAX_VERIFIED = 512

    def __init__(self) -> None:
        self._serializer = None  # (keys it was made with, serializer)
        self._verified = Kept(self.MAX_VERIFIED)  # cookie value -> (signed at, data)

    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        made = self._serializer
        if made is None or made[0] != keys:
            serializer = super().get_signing_serializer(app)
            serializer.signer = KeptKeySigner
            self._verified.clear()  # checked with keys that may no longer count
            made = self._serializer = (keys, serializer)
        return made[1]

    def open_session(self, app, request):
        if "HTTP_COOKIE" not in request.environ and self.get_signing_serializer(app) is not None:
            return self.session_class()  # no cookie at all (a protocol client): no header to parse
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        verified = self._verified.get(value)
        if verified is None:
            try:
                data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
            except BadSignature:
                return self.session_class()
            self._verified.keep(value, (int(signed_at.timestamp()), data))
            return self.session_class(copy.deepcopy(data))
        # The age as itsdangerous judges it (TimestampSigner.unsign): too old, or from the future.
        age = int(time.time()) - verified[0]
        if age > max_age or age < 0:
            return self.session_class()
        return self.session_class(copy.deepcopy(verified[1]))
