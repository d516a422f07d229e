"""Every setting of the provider, its default and its check, in one place.

Each key can be set from the environment as ``IDP_<KEY>`` (Flask's
``from_prefixed_env("IDP")``: values are parsed as JSON where they can be, so
``IDP_RATELIMIT_ENABLED=false`` is a boolean). ``validate()`` runs at start-up
and stops the process with one readable line on a missing or malformed value.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one readable line."""


DEFAULTS: dict = {
    # "production" or "development". Development shows the dev mailbox and
    # accepts the default issuer; production insists on an explicit IDP_ISSUER.
    "ENV": "production",
    # Public base URL of the provider: the `iss` of every token and the base of
    # every link in mail.
    "ISSUER": "http://127.0.0.1:5000",
    # SQLAlchemy URL; empty means a SQLite file in the instance folder.
    "DATABASE_URL": "",
    # Seconds PostgreSQL may take to accept a connection (libpq connect_timeout; at least 2).
    "DATABASE_CONNECT_TIMEOUT": 5,
    # Redis URL for rate limits and shared short-lived state; empty = in-process.
    "REDIS_URL": "",
    # Seconds to wait for Redis to connect or answer before a limited step is refused (503).
    "REDIS_TIMEOUT": 2,
    # Session/CSRF secret. Empty: generated once and kept in the instance folder.
    "SECRET_KEY": "",
    # Secrets that came before IDP_SECRET_KEY, newest first: what they encrypted or signed
    # (TOTP secrets, signing keys at rest, machine tokens, CAPTCHA challenges, e-mail codes,
    # session cookies, CSRF tokens) is still read, while everything new uses IDP_SECRET_KEY.
    # A JSON list or comma-separated. Rotate: put the old secret here and a new one in
    # IDP_SECRET_KEY on every instance, run `idp keys reencrypt`, wait for the longest
    # token and session lifetime, then remove it.
    "PREVIOUS_SECRET_KEYS": [],
    # SMTP relay. Without MAIL_SERVER, mail stays in the outbox and (in
    # development) is readable in the dev mailbox at /dev/mailbox.
    "MAIL_SERVER": "",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "idp@localhost",
    "MAIL_TIMEOUT": 10,
    # Flask-Mail would suppress sending under TESTING; our tests use a real SMTP sink.
    "MAIL_SUPPRESS_SEND": False,
    # Flask-Limiter switch; load tests turn it off.
    "RATELIMIT_ENABLED": True,
    # POST /token (client credentials, refresh token) and POST /introspect answered below
    # Flask's dispatch (web/lean.py); off, every request takes the Flask route. Same answers.
    "LEAN_PROTOCOL": True,
    # Readable limit strings (Flask-Limiter / limits syntax).
    "RATELIMIT_LOGIN_PER_IP": "30 per minute; 300 per hour",
    # Sign-in tries per e-mail address, whether or not it has an account (on top of the lockout).
    "RATELIMIT_LOGIN_PER_ACCOUNT": "20 per hour",
    # Per-IP limits of the other endpoints people reach without signing in, and of the
    # support search. The live password verdict is asked for at every keystroke.
    "RATELIMIT_PASSWORD_CHECK": "120 per minute",
    "RATELIMIT_SUPPORT_SEARCH": "60 per minute",
    # The connector reset portal: opening it, fetching a CAPTCHA challenge, and its steps.
    "RATELIMIT_CONNECTOR_START": "30 per minute",
    "RATELIMIT_CONNECTOR_STEP": "10 per minute; 60 per hour",
    # Invitations a firm's accountant sends from the firm page.
    "RATELIMIT_FIRM_INVITE": "60 per hour",
    # Changes an owner makes on an administration's access page (grants send mail; a firm
    # code typed there must not be guessed at leisure).
    "RATELIMIT_ACCESS_CHANGE": "60 per hour",
    # The trial sign-up, per IP address: its start page and CAPTCHA challenges, its first step
    # (the one with the CAPTCHA: each pass starts a sign-up) and each later step.
    "RATELIMIT_SIGNUP_START": "30 per minute",
    "RATELIMIT_SIGNUP_FIRST_STEP": "10 per hour; 30 per day",
    "RATELIMIT_SIGNUP_STEP": "30 per minute; 300 per hour",
    # Failed client authentications (token, introspection, revocation), per client and address
    # and per client from anywhere; once exceeded the client gets 429 whatever it sends.
    "RATELIMIT_CLIENT_AUTH_FAILURES_PER_ADDRESS": "20 per minute; 100 per hour",
    "RATELIMIT_CLIENT_AUTH_FAILURES_PER_CLIENT": "600 per hour",
    # Lifetimes in seconds.
    "FLOW_LIFETIME": 30 * 60,
    "EMAIL_CODE_LIFETIME": 10 * 60,
    "EMAIL_CODE_MAX_ATTEMPTS": 5,
    "EMAIL_CODE_RESEND_INTERVAL": 30,
    "EMAIL_CODE_MAX_PER_HOUR": 5,
    "AUTHORIZATION_CODE_LIFETIME": 60,
    "ACCESS_TOKEN_LIFETIME": 3600,
    "ID_TOKEN_LIFETIME": 3600,
    "REFRESH_TOKEN_LIFETIME": 30 * 24 * 3600,
    # A public client's refresh tokens (browser and native apps hold them where a thief may
    # find them): each one expires after PUBLIC_REFRESH_IDLE_LIFETIME without use (a long
    # weekend), and no refresh of one sign-in reaches beyond PUBLIC_REFRESH_ABSOLUTE_LIFETIME
    # after it. Confidential clients keep REFRESH_TOKEN_LIFETIME. Seconds.
    "PUBLIC_REFRESH_IDLE_LIFETIME": 4 * 24 * 3600,
    "PUBLIC_REFRESH_ABSOLUTE_LIFETIME": 14 * 24 * 3600,
    # DPoP (RFC 9449). A proof's `iat` may lie this many seconds before or after the server's
    # clock; its `jti` is remembered (in the database, shared by every instance) as long.
    "DPOP_PROOF_WINDOW": 120,
    # The server's DPoP nonces: each is good for this long plus the period before it is
    # replaced (stateless, a MAC of the period, so every instance accepts every nonce).
    "DPOP_NONCE_LIFETIME": 300,
    # Proofs at the token and PAR endpoints must carry a current server nonce (so a proof
    # made in advance, say by injected script, is useless); userinfo checks a nonce when
    # one is sent and does not ask for it.
    "DPOP_NONCE_REQUIRED": True,
    # A pushed authorization request (RFC 9126) can be used once, within this many seconds.
    "PAR_LIFETIME": 60,
    "SESSION_LIFETIME": 12 * 3600,
    # A session's "last seen" (the security centre) is written at most this often (seconds),
    # so a browser's requests do not each cost a database write.
    "SESSION_SEEN_INTERVAL": 5 * 60,
    # Sign-ins and security events per page of the security centre.
    "SECURITY_EVENTS_PER_PAGE": 20,
    # An invitation link works this long (re-sending gives a fresh link).
    "INVITATION_LIFETIME": 14 * 24 * 3600,
    # The connector reset flow, and so its mailed link, lasts this long.
    "CONNECTOR_FLOW_LIFETIME": 10 * 60,
    # A connector user may reset its password once in this interval (support can release it).
    "CONNECTOR_RESET_INTERVAL": 24 * 3600,
    # A trial administration (self-service sign-up, plan "trial") runs this many days.
    "TRIAL_DAYS": 30,
    # Support actions need a sign-in at most this old (seconds); older means sign in again.
    "SUPPORT_FRESH_LOGIN": 15 * 60,
    # Passkeys (WebAuthn). Adding one in the security centre needs a sign-in at most
    # PASSKEY_FRESH_LOGIN old (seconds; older means sign in again and come back), and so does a
    # password change of an account whose only second factor is passkeys. The browser's passkey
    # prompt waits PASSKEY_CEREMONY_TIMEOUT seconds, and a security-centre request to add one
    # (its challenge) lasts as long. An account holds at most PASSKEYS_PER_ACCOUNT passkeys.
    "PASSKEY_FRESH_LOGIN": 10 * 60,
    "PASSKEY_CEREMONY_TIMEOUT": 5 * 60,
    "PASSKEYS_PER_ACCOUNT": 10,
    # Smart lockout of sign-in passwords (services/smart_lockout.py). Wrong passwords are
    # counted per (address, source), for known and unknown addresses alike: the source is a
    # familiar device (the signed device cookie of an earlier completed sign-in of that
    # account) or else the client's IP address. After SIGN_IN_CAPTCHA_AFTER_FAILURES wrong
    # passwords within LOCKOUT_WINDOW the source must solve the proof-of-work CAPTCHA before
    # each further try; after LOCKOUT_AFTER_FAILURES it is locked for LOCKOUT_DURATION, each
    # further lock of that source twice as long, up to LOCKOUT_MAX_DURATION. A source quiet
    # for LOCKOUT_MEMORY (or a right password from it) starts again. Other sources, such as
    # the owner's familiar browser, are not affected; these locks always end by themselves.
    "SIGN_IN_CAPTCHA_AFTER_FAILURES": 3,
    "LOCKOUT_MAX_DURATION": 24 * 3600,
    "LOCKOUT_MEMORY": 24 * 3600,
    # The device cookie that makes a browser familiar to the accounts signed in on it (seconds).
    "DEVICE_COOKIE_LIFETIME": 365 * 24 * 3600,
    # Mails about locked sources per account (readable limit string), so an attacker who
    # rotates addresses cannot flood the owner's mailbox; the audit trail records every lock.
    "RATELIMIT_LOCKOUT_MAIL": "3 per day",
    # Lockout of authenticator codes (after a right password) and of connector users: this
    # many failed tries within the window lock the account (or connector user) for
    # LOCKOUT_DURATION; after LOCKOUTS_UNTIL_SUPPORT lockouts in a row only support unlocks.
    # Seconds.
    "LOCKOUT_AFTER_FAILURES": 5,
    "LOCKOUT_WINDOW": 15 * 60,
    "LOCKOUT_DURATION": 15 * 60,
    "LOCKOUTS_UNTIL_SUPPORT": 3,
    # Mail delivery: attempts before a mail is abandoned, and the first backoff.
    "MAIL_MAX_ATTEMPTS": 12,
    "MAIL_RETRY_BASE": 5,
    "MAIL_POLL_INTERVAL": 1.0,
    # Back-channel logout (through its own outbox, by the same delivery loop): how long one
    # POST to a client may take, tries before a logout is abandoned, the first backoff
    # (doubling, at most an hour: 12 tries span about two and a half hours), and how long
    # one delivery round may spend on logouts before it leaves the rest to the next, so a
    # hanging client never holds up mail for long. Seconds.
    "BACKCHANNEL_TIMEOUT": 3,
    "BACKCHANNEL_MAX_ATTEMPTS": 12,
    "BACKCHANNEL_RETRY_BASE": 5,
    "BACKCHANNEL_ROUND_SECONDS": 10,
    # /readyz shows "outbox": "backlog" once a mail due for delivery has waited this long
    # (seconds); it stays 200 then (see services/readiness.py).
    "OUTBOX_BACKLOG_AGE": 60,
    # Languages offered; the first is the default.
    "LANGUAGES": ["nl", "en"],
    # The domain people may type after a connector username in the reset portal.
    "CONNECTOR_DOMAIN": "connect.example",
    # Proof-of-work CAPTCHA of the connector portal. The browser searches a counter drawn
    # below CAPTCHA_MAX_NUMBER (half of it on average); one try is a PBKDF2 of
    # CAPTCHA_COST iterations, about 0.3 ms per core at 1000, so a browser on two cores
    # needs about 0.6 s on average and 1.2-1.5 s at most. Challenges expire after
    # CAPTCHA_LIFETIME seconds.
    "CAPTCHA_MAX_NUMBER": 8000,
    "CAPTCHA_COST": 1000,
    "CAPTCHA_LIFETIME": 10 * 60,
    # Name shown on pages and in mail.
    "PRODUCT_NAME": "Suite ID",
    # The provider's time zone (an IANA name): pages show times in the zone the person's
    # browser tells, and in this one (with its name) until it has; mail always uses this one.
    "TIME_ZONE": "Europe/Amsterdam",
    # The general terms and the privacy statement that people accept (invitation, sign-up):
    # absolute URLs of the operator's own documents. Empty: the provider's pages /terms and
    # /privacy, which describe the sign-in service itself.
    "TERMS_URL": "",
    "PRIVACY_URL": "",
    "SUPPORT_CONTACT": "support",
    # -- operating many instances (CONTRACT section 10) --
    # How many proxies in front set X-Forwarded-For / -Proto (and X-Request-Id); 0 ignores those headers.
    "TRUSTED_PROXIES": 0,
    # "text" (one readable line) or "json" (one JSON object per line, with the request id).
    "LOG_FORMAT": "text",
    # Bearer token that may read /metrics from other hosts; loopback clients need none.
    "METRICS_TOKEN": "",
    # `idp serve` prunes expired rows this often (seconds; 0 = never), PRUNE_BATCH_SIZE ids per DELETE.
    "PRUNE_INTERVAL": 3600,
    "PRUNE_BATCH_SIZE": 1000,
    # Sent and abandoned mail stays this long (seconds) for support questions, then is pruned.
    "OUTBOX_RETENTION": 7 * 24 * 3600,
}


# Settings above that must be positive whole numbers (checked at start-up).
POSITIVE_NUMBERS = (
    "INVITATION_LIFETIME", "CONNECTOR_FLOW_LIFETIME", "CONNECTOR_RESET_INTERVAL", "SUPPORT_FRESH_LOGIN",
    "PASSKEY_FRESH_LOGIN", "PASSKEY_CEREMONY_TIMEOUT", "PASSKEYS_PER_ACCOUNT",
    "LOCKOUT_AFTER_FAILURES", "LOCKOUT_WINDOW", "LOCKOUT_DURATION", "LOCKOUTS_UNTIL_SUPPORT",
    "SIGN_IN_CAPTCHA_AFTER_FAILURES", "LOCKOUT_MAX_DURATION", "LOCKOUT_MEMORY", "DEVICE_COOKIE_LIFETIME",
    "CAPTCHA_COST", "CAPTCHA_LIFETIME", "SESSION_SEEN_INTERVAL", "SECURITY_EVENTS_PER_PAGE", "TRIAL_DAYS",
    "BACKCHANNEL_TIMEOUT", "BACKCHANNEL_MAX_ATTEMPTS", "BACKCHANNEL_RETRY_BASE", "BACKCHANNEL_ROUND_SECONDS",
    "PUBLIC_REFRESH_IDLE_LIFETIME", "PUBLIC_REFRESH_ABSOLUTE_LIFETIME", "DPOP_PROOF_WINDOW", "DPOP_NONCE_LIFETIME",
    "PAR_LIFETIME",
)


def limit(key: str):
    """A Flask-Limiter limit read from the setting ``key`` at request time, so
    ``IDP_<KEY>`` and test settings apply: ``@limiter.limit(config.limit("RATELIMIT_..."))``."""

    def value() -> str:
        from flask import current_app

        return current_app.config[key]

    return value


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"IDP_{name} must be an absolute {'/'.join(schemes)} URL, got {value!r}")


def load(app, test_config: dict | None = None) -> None:
    """Fill ``app.config`` from the defaults, the environment and ``test_config``."""
    app.config.update(DEFAULTS)
    issuer_from_env = "IDP_ISSUER" in os.environ
    app.config.from_prefixed_env("IDP")
    if test_config:
        app.config.update(test_config)
        issuer_from_env = issuer_from_env or "ISSUER" in test_config
    app.config["ISSUER_EXPLICIT"] = issuer_from_env
    validate(app)
    derive(app)


def validate(app) -> None:
    c = app.config
    if c["ENV"] not in ("production", "development"):
        raise ConfigError(f"IDP_ENV must be 'production' or 'development', got {c['ENV']!r}")
    if c["ENV"] == "production" and not c["ISSUER_EXPLICIT"] and not c.get("TESTING"):
        raise ConfigError("IDP_ISSUER must be set in production (the public base URL, e.g. https://login.example.com); "
                          "for the demo data of `make run`, set IDP_ENV=development")
    issuer = str(c["ISSUER"]).rstrip("/")
    _check_url("ISSUER", issuer, ("http", "https"))
    if urlsplit(issuer).query or urlsplit(issuer).fragment:
        raise ConfigError("IDP_ISSUER must not have a query or fragment")
    c["ISSUER"] = issuer
    url = c["DATABASE_URL"]
    if url:
        scheme = str(url).split(":", 1)[0]
        if scheme not in ("sqlite", "postgresql+psycopg", "postgresql"):
            raise ConfigError(
                f"IDP_DATABASE_URL has an unknown driver {scheme!r}; use sqlite:/// or postgresql+psycopg://"
            )
        if scheme == "postgresql":
            c["DATABASE_URL"] = "postgresql+psycopg" + str(url)[len("postgresql"):]
    if c["REDIS_URL"]:
        _check_url("REDIS_URL", c["REDIS_URL"], ("redis", "rediss", "unix"))
    for name in ("TERMS_URL", "PRIVACY_URL"):
        if c[name]:
            _check_url(name, c[name], ("http", "https"))
    from .timezones import zone_named

    if zone_named(c["TIME_ZONE"]) is None:
        raise ConfigError(f"IDP_TIME_ZONE must be an IANA time zone such as Europe/Amsterdam, got {c['TIME_ZONE']!r}")
    if c["MAIL_SERVER"]:
        try:
            port = int(c["MAIL_PORT"])
        except (TypeError, ValueError):
            raise ConfigError(f"IDP_MAIL_PORT must be a number, got {c['MAIL_PORT']!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"IDP_MAIL_PORT must be between 1 and 65535, got {port}")
        c["MAIL_PORT"] = port
    for key in POSITIVE_NUMBERS:
        if isinstance(c[key], bool) or not isinstance(c[key], int) or c[key] <= 0:
            raise ConfigError(f"IDP_{key} must be a positive whole number, got {c[key]!r}")
    for key in ("RATELIMIT_ENABLED", "DPOP_NONCE_REQUIRED", "LEAN_PROTOCOL"):
        if not isinstance(c[key], bool):
            raise ConfigError(f"IDP_{key} must be true or false")
    secret = c["SECRET_KEY"]
    if secret and _weak(secret):
        raise ConfigError("IDP_SECRET_KEY must be a random value of at least 32 characters")
    c["PREVIOUS_SECRET_KEYS"] = _previous_secrets(c["PREVIOUS_SECRET_KEYS"])
    validate_operations(c)


def _weak(secret) -> bool:
    return not isinstance(secret, str) or len(secret) < 32 or secret.lower() in ("dev", "secret", "changeme")


def _previous_secrets(value) -> list[str]:
    """IDP_PREVIOUS_SECRET_KEYS as a list: a JSON list (parsed already) or comma-separated."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError("IDP_PREVIOUS_SECRET_KEYS must be a JSON list or a comma-separated list of secrets")
    for number, secret in enumerate(value, 1):
        if _weak(secret):
            # Never the value itself: it is a secret, and this line ends up in logs.
            raise ConfigError(
                f"IDP_PREVIOUS_SECRET_KEYS entry {number} must be a random value of at least 32 characters"
            )
    return list(value)


def _int_setting(c, name: str, minimum: int) -> None:
    value = c[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"IDP_{name} must be a whole number of at least {minimum}, got {value!r}")


def validate_operations(c) -> None:
    """The settings of CONTRACT section 10."""
    if c["ENV"] == "production" and not c.get("TESTING") and not c["SECRET_KEY"] \
            and c["DATABASE_URL"] and not str(c["DATABASE_URL"]).startswith("sqlite"):
        # Each machine would generate its own secret: sessions and encrypted keys would not carry over.
        raise ConfigError("IDP_SECRET_KEY must be set in production with a shared database (every instance needs the same one)")
    for name, minimum in (("TRUSTED_PROXIES", 0), ("PRUNE_INTERVAL", 0), ("PRUNE_BATCH_SIZE", 1), ("OUTBOX_RETENTION", 0),
                          ("OUTBOX_BACKLOG_AGE", 1), ("DATABASE_CONNECT_TIMEOUT", 2)):
        _int_setting(c, name, minimum)
    if c["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError(f"IDP_LOG_FORMAT must be 'text' or 'json', got {c['LOG_FORMAT']!r}")
    token = c["METRICS_TOKEN"]
    if token and len(str(token)) < 32:
        raise ConfigError("IDP_METRICS_TOKEN must be a random value of at least 32 characters")


def _instance_secret(instance_path: str) -> str:
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def derive(app) -> None:
    """Settings computed from others: database URI, secret, limiter storage."""
    c = app.config
    if not c["SECRET_KEY"]:
        try:
            c["SECRET_KEY"] = _instance_secret(app.instance_path)
        except FileExistsError:  # another worker wrote it first
            c["SECRET_KEY"] = (Path(app.instance_path) / "secret_key").read_text().strip()
    if not c["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        c["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'idp.db'}"
    # Session cookies and CSRF tokens signed with a previous secret stay valid
    # (itsdangerous takes a list of keys, oldest first, and signs with the last).
    c["SECRET_KEY_FALLBACKS"] = [s for s in c["PREVIOUS_SECRET_KEYS"] if s != c["SECRET_KEY"]]
    if c["SECRET_KEY_FALLBACKS"]:
        c["WTF_CSRF_SECRET_KEY"] = [*reversed(c["SECRET_KEY_FALLBACKS"]), c["SECRET_KEY"]]
    c["SQLALCHEMY_DATABASE_URI"] = c["DATABASE_URL"]
    c["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    if c["DATABASE_URL"].startswith("sqlite"):
        c.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        # connect_timeout bounds the wait for a server that does not answer (so /readyz says 503
        # instead of hanging). The pool's connections that a restart closed are replaced at their
        # checkout by idp.live_connections, in place of pool_pre_ping's round trip.
        c.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"connect_timeout": c["DATABASE_CONNECT_TIMEOUT"]}})
    c["RATELIMIT_STORAGE_URI"] = c["REDIS_URL"] or "memory://"
    if c["REDIS_URL"]:
        # A Redis that does not answer must fail a request in seconds, not hang its worker.
        options = dict(c.get("RATELIMIT_STORAGE_OPTIONS") or {})
        options.setdefault("socket_connect_timeout", c["REDIS_TIMEOUT"])
        options.setdefault("socket_timeout", c["REDIS_TIMEOUT"])
        c["RATELIMIT_STORAGE_OPTIONS"] = options
    c["RATELIMIT_HEADERS_ENABLED"] = False
    c["RATELIMIT_STRATEGY"] = "moving-window"
    c["SESSION_COOKIE_NAME"] = "idp_session"
    c["SESSION_COOKIE_HTTPONLY"] = True
    c["SESSION_COOKIE_SAMESITE"] = "Lax"
    c["SESSION_COOKIE_SECURE"] = c["ISSUER"].startswith("https://")
    c["WTF_CSRF_TIME_LIMIT"] = None  # the flow's own expiry bounds a form's life
    c["WTF_CSRF_SSL_STRICT"] = False
    c["MAX_CONTENT_LENGTH"] = 64 * 1024
    c["BABEL_DEFAULT_LOCALE"] = c["LANGUAGES"][0]
    c["DEV_MAILBOX"] = c["ENV"] == "development" and not c["MAIL_SERVER"]
