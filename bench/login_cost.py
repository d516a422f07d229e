#!/usr/bin/env python3
"""What a login costs the provider apart from its Argon2id verification, in CPU time.

Run from the repository root with the virtualenv active:

    python bench/login_cost.py [--logins 30] [--rate-limits] [--queries] [--profile PATH [--profile-step N]]
                               [--database-url URL [--round-trips]]
    valgrind --tool=callgrind python bench/login_cost.py --logins 10 --callgrind

It drives whole logins (authorize, e-mail, password, authenticator code, the redirect with the
code, the code exchange) through the app in this process with Flask's test client, on a fresh
SQLite database (or the one of ``--database-url``), and measures the CPU time of this thread
inside the app per request (so neither the network, nor the test client, nor other processes on a
shared machine count) and, apart, inside Argon2id. It prints the cost per kind of request, the
hash's share and the ratio of everything else to the hash: below 1.0 the work around the hash
costs less than the hash itself.
It also prints the CPU time of each request by its place in the login (the e-mail page, the
e-mail posted, ...). ``--queries`` counts the SQL statements of a login and lists those of one
(through SQLAlchemy's statement events, which make the provider run every statement through
SQLAlchemy's execution, as it does under any listener: measure CPU time without it); ``--profile`` writes a
cProfile of the requests (pstats format, timed by the thread's CPU clock; ``--profile-step N``:
only the N-th request of each login); ``--callgrind``, under valgrind, zeroes the instruction counts before the
measured logins and dumps them after (callgrind.out.PID.N), which a shared machine's load does not
move. ``--rate-limits`` measures with Flask-Limiter's limits on, as in production (in memory; every
limit string of the configuration with its counts raised so that no login is refused), instead
of off as the load benchmarks run. ``--round-trips`` (PostgreSQL) counts the round trips to the
database of each request, from libpq's protocol trace of every connection the app makes (a Sync
or a simple Query sent each; the trace's writes then count in the CPU figures). It asserts
nothing; bench/README.md says what the figures mean.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PASSWORD = "bench password: correct horse battery staple"
WARMUP = 3
# What each request of an ordinary login is, in order: a step posted answers with the next
# step's page (the test Browser would follow a redirect).
STEPS = ("the e-mail page", "e-mail posted, the password page", "password posted (Argon2id), the next page",
         "code posted, redirect with the code", "code exchange")


def raised_limits(config) -> dict[str, str]:
    """Every limit string of ``config`` (``RATELIMIT_...``) with its counts a million times
    higher: the same limits, checked and counted as in production, never reached."""
    return {key: re.sub(r"\d+(?= per )", lambda count: str(int(count.group()) * 1_000_000), value)
            for key, value in config.items()
            if key.startswith("RATELIMIT_") and isinstance(value, str) and " per " in value}


class Meter:
    """Wraps the WSGI app: CPU time per request kind, the statements run, an optional profile."""

    def __init__(self, app, profile: bool, only_place: int | None = None, trace=None):
        self.inner = app.wsgi_app
        # libpq's protocol trace of every connection (--round-trips): written at its end by every
        # connection, read on from where the last request's reading left off.
        self.trace = None if trace is None else open(trace, "w+b")  # noqa: SIM115
        self.traced_to = None if trace is None else open(trace, "ab")  # noqa: SIM115
        self.round_trips: dict[int, list[int]] = collections.defaultdict(list)
        self.on = False
        self.cpu: dict[str, list[float]] = collections.defaultdict(list)
        self.statements: list[tuple[str, str]] = []
        # CPU time by the request's place in the login (its n-th request), to tell the steps apart.
        self.by_place: dict[int, list[float]] = collections.defaultdict(list)
        self.place = 0
        self.only_place = only_place
        self.places: dict[int, str] = {}
        # Timed by this thread's CPU clock, as the figures are: other processes on a shared machine
        # do not lengthen the functions that happen to run while they do.
        self.profile = cProfile.Profile(time.thread_time) if profile else None
        self._current = ""
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        self._current = f"{environ['REQUEST_METHOD']} /{environ['PATH_INFO'].split('/')[1]}"
        profiling = self.profile is not None and self.on and self.only_place in (None, self.place + 1)
        start = time.thread_time()
        if profiling:
            self.profile.enable()
        try:
            body = b"".join(self.inner(environ, start_response))
        finally:
            if profiling:
                self.profile.disable()
        trips = self._round_trips()
        if self.on:
            spent = time.thread_time() - start
            if self.trace is not None:
                self.round_trips[self.place].append(trips)
            self.cpu[self._current].append(spent)
            self.by_place[self.place].append(spent)
            self.places.setdefault(self.place, self._current)
        self.place += 1
        return [body]

    def _round_trips(self) -> int:
        """The round trips to the database since the last call (--round-trips), else 0."""
        if self.trace is None:
            return 0
        from tests.helpers import round_trips, sent_messages

        return round_trips(sent_messages(self.trace.read()))

    def traced(self, dbapi_connection, connection_record) -> None:  # noqa: ARG002
        """Trace a new connection of the engine into the trace (SQLAlchemy's connect event)."""
        dbapi_connection.pgconn.trace(self.traced_to.fileno())

    def statement(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ARG002
        if self.on:
            self.statements.append((self._current, " ".join(statement.split())[:140]))


def main() -> int:
    parser = argparse.ArgumentParser(description="CPU time of a login in the provider, apart from its hash.")
    parser.add_argument("--logins", type=int, default=30, help="measured logins (30)")
    parser.add_argument("--queries", action="store_true",
                        help="count the SQL statements of a login and list those of one (the statements then "
                             "run through SQLAlchemy's execution, which costs more CPU)")
    parser.add_argument("--profile", metavar="PATH", help="write a cProfile of the measured requests to PATH")
    parser.add_argument("--profile-step", type=int, metavar="N",
                        help="with --profile: profile only the N-th request of each login (1 = GET /authorize)")
    parser.add_argument("--callgrind", action="store_true",
                        help="under valgrind --tool=callgrind: count the measured logins' instructions only")
    parser.add_argument("--database-url", metavar="URL",
                        help="run on this database (an empty one, or an idp database: its tables are created if "
                             "missing and the accounts added) instead of a fresh SQLite file")
    parser.add_argument("--round-trips", action="store_true",
                        help="with a PostgreSQL --database-url: count each request's round trips to the database")
    parser.add_argument("--rate-limits", action="store_true",
                        help="with Flask-Limiter's limits on, as in production (raised so that none is reached)")
    args = parser.parse_args()
    if not 1 <= args.logins <= 1000:
        parser.error("--logins must be 1 to 1000")
    if args.round_trips and not (args.database_url or "").startswith("postgresql"):
        parser.error("--round-trips needs a PostgreSQL --database-url")

    tmp = tempfile.mkdtemp(prefix="idp-login-cost-")
    os.environ["IDP_INSTANCE_PATH"] = str(Path(tmp) / "instance")
    import argon2
    from sqlalchemy import event

    from idp import clock, config, create_app
    from idp.extensions import db
    from idp.models import Account
    from idp.services import passwords, totp
    from tests.helpers import Browser, exchange_code, make_client

    settings = {"ENV": "production", "ISSUER": "http://idp.test",
                "DATABASE_URL": args.database_url or f"sqlite:///{tmp}/login.db",
                "SECRET_KEY": os.urandom(32).hex(), "RATELIMIT_ENABLED": args.rate_limits, "REDIS_URL": "",
                "MAIL_SERVER": ""}
    if args.rate_limits:
        settings.update(raised_limits(config.DEFAULTS))
    app = create_app(settings)
    logging.getLogger().setLevel(logging.WARNING)
    secret = totp.new_secret()
    trace = Path(tmp) / "libpq-trace" if args.round_trips else None
    meter = Meter(app, bool(args.profile), args.profile_step, trace)
    run = os.urandom(4).hex()  # the accounts' addresses, new in a database used before
    with app.app_context():
        if trace is not None:  # every connection traced: those made while the app started are let go
            event.listen(db.engine, "connect", meter.traced)
            db.engine.dispose()
        db.create_all()
        password_hash = passwords.hash_password(PASSWORD)
        for i in range(args.logins + WARMUP):  # signed in before: address verified, authenticator enrolled
            db.session.add(Account(email=f"login-{run}-{i}@example.com", name=f"Login {i}", password_hash=password_hash,
                                   password_changed_at=clock.now(), email_verified=True, totp_secret=totp.seal(secret),
                                   totp_enrolled_at=clock.now(), totp_last_counter=0))
        db.session.commit()
        engine = db.engine
    client = make_client(app, name="Bench portal", first_party=True)
    if args.queries:
        event.listen(engine, "before_cursor_execute", meter.statement)

    hashing: list[float] = []
    verify = argon2.PasswordHasher.verify

    def timed_verify(self, stored, password):
        start = time.thread_time()
        try:
            return verify(self, stored, password)
        finally:
            if meter.on:
                hashing.append(time.thread_time() - start)

    argon2.PasswordHasher.verify = timed_verify

    relying_app = app.test_client()  # the app's own server: none of the browser's cookies

    def login(i: int) -> None:
        meter.place = 0
        browser = Browser(app)
        browser.totp_secret = secret
        browser.authorize(client["client_id"], scope="openid email")
        browser.sign_in(f"login-{run}-{i}@example.com", PASSWORD)
        response = exchange_code(relying_app, client, browser.callback_params()["code"], browser.verifier)
        if response.status_code != 200:
            raise SystemExit(f"code exchange answered {response.status_code}: {response.get_data(as_text=True)}")

    for i in range(args.logins, args.logins + WARMUP):
        login(i)
    if args.callgrind:
        subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=True, capture_output=True)
    meter.on = True
    first = 0
    for i in range(args.logins):
        login(i)
        first = first or len(meter.statements)
    meter.on = False
    if args.callgrind:
        subprocess.run(["callgrind_control", "--dump=logins", str(os.getpid())], check=True, capture_output=True)

    n = args.logins
    limits = "on" if args.rate_limits else "off"
    database = engine.dialect.name + (", libpq traced" if trace is not None else "")
    print(f"CPU time inside the app per login ({n} logins, {database}, rate limits {limits}), by request:")
    total = 0.0
    for kind, times in sorted(meter.cpu.items()):
        total += sum(times)
        print(f"  {kind:<16} {len(times) / n:4.1f} per login  mean {statistics.mean(times) * 1e3:6.2f} ms"
              f"  per login {sum(times) / n * 1e3:6.2f} ms")
    print("by the request's place in the login (the steps of an ordinary login):")
    for place, times in sorted(meter.by_place.items()):
        name = STEPS[place] if place < len(STEPS) and len(meter.by_place) == len(STEPS) else ""
        trips = meter.round_trips.get(place)
        trips = f"  {statistics.mean(trips):5.1f} round trips" if trips else ""
        print(f"  {place + 1}. {meter.places[place]:<16} {name:<44} mean {statistics.mean(times) * 1e3:6.2f} ms{trips}")
    hashed = sum(hashing)
    print(f"total {total / n * 1e3:.1f} ms per login; Argon2id {hashed / n * 1e3:.1f} ms "
          f"({len(hashing) / n:.1f} verifications per login); everything else {(total - hashed) / n * 1e3:.1f} ms")
    if hashed:
        print(f"everything else / the hash: {(total - hashed) / hashed:.2f}")
    if trace is not None:
        print(f"round trips to the database per login: {sum(map(sum, meter.round_trips.values())) / n:.1f}")
    if args.queries:
        print(f"SQL statements per login: {len(meter.statements) / n:.1f}")
        for kind, statement in meter.statements[:first]:
            print(f"  {kind:<16} {statement}")
    if args.profile:
        meter.profile.dump_stats(args.profile)
        print(f"profile written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
