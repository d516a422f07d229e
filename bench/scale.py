#!/usr/bin/env python3
"""What a login, a refresh, an introspection and a support search cost at 1 k and at 1 M accounts.

Run from the repository root with the virtualenv active and a PostgreSQL server at hand:

    python bench/scale.py [--accounts 1000000] [--tokens 10000000] [--database-url URL]

It creates two databases of its own (``idp_scale_small`` and ``idp_scale_large`` on the server of
``--database-url`` unless named otherwise), migrates them, seeds 1,000 accounts with 10 tokens each
into the one and ``--accounts`` and ``--tokens`` into the other with COPY (never the ORM), times
each operation against both, call by call in turn, and prints p50 and p99 side by side with their
ratios. The databases are dropped at the end unless ``--keep`` is given. It asserts nothing;
bench/README.md says what the figures mean.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import logging
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

BASELINE_ACCOUNTS = 1000
PASSWORD = "bench password: correct horse battery staple"
SCOPE = "openid profile email offline_access administrations"
AMR = '["pwd","otp","mfa"]'
# The tables seeded by COPY; their secondary indexes and constraints are dropped for the load
# and built again after it, as a bulk load into PostgreSQL is done.
SEEDED = ("accounts", "grants", "tokens")
CHUNK = 100_000


def account_id(n: int) -> str:
    return f"{n:032x}"


def email(n: int) -> str:
    return f"bench-{n:07d}@example.com"


def token_value(kind: str, index: int) -> str:
    return f"bench-{kind}-{index:010d}"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


# -- the database ---------------------------------------------------------------------------


def libpq(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def sqlalchemy_url(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql+psycopg", database=database).render_as_string(hide_password=False)


def create_database(url: str, name: str, replace: bool) -> None:
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            if not replace:
                raise SystemExit(f"database {name} exists; drop it, pass --replace, or name another with --database")
            conn.execute(f'DROP DATABASE "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Loader:
    """COPY into the seeded tables, with their secondary indexes and constraints set aside."""

    def __init__(self, dsn: str):
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SET maintenance_work_mem = '512MB'")
        self.conn.execute("SET synchronous_commit = off")

    def _set_aside(self) -> list[str]:
        """Drop the seeded tables' unique and foreign-key constraints and secondary indexes;
        returns the statements that make them again."""
        again, drop = [], []
        for table in SEEDED:
            for name, definition in self.conn.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC", (table,)):
                drop.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                again.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for statement in drop:
            self.conn.execute(statement)
        for table in SEEDED:
            for name, definition in self.conn.execute(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (table,)):
                self.conn.execute(f'DROP INDEX "{name}"')
                again.insert(0, definition)
        return again

    def load(self, accounts: range, tokens_per_account: int, client_id: str, secrets_: dict) -> None:
        again = self._set_aside()
        self._copy("accounts", ACCOUNT_COLUMNS, (account_row(n, secrets_) for n in accounts))
        self._copy("grants", GRANT_COLUMNS, (grant_row(n, client_id) for n in accounts))
        self._copy("tokens", TOKEN_COLUMNS,
                   (row for n in accounts for row in token_rows(n, tokens_per_account, client_id)))
        for statement in again:  # indexes first, then the constraints that use them
            self.conn.execute(statement)
        self.conn.execute("ANALYZE")

    def _copy(self, table: str, columns: tuple[str, ...], rows) -> None:
        with self.conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            buffer = io.StringIO()
            for count, row in enumerate(rows, 1):
                buffer.write("\t".join(row))
                buffer.write("\n")
                if count % CHUNK == 0:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())

    def size(self) -> str:
        return self.conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


NULL = r"\N"
ACCOUNT_COLUMNS = ("id", "email", "name", "role", "password_hash", "password_changed_at", "email_verified",
                   "totp_secret", "totp_enrolled_at", "totp_last_counter", "created_at", "failed_attempts",
                   "lockouts")
GRANT_COLUMNS = ("id", "client_id", "account_id", "created_at", "amr")
TOKEN_COLUMNS = ("client_id", "account_id", "grant_id", "access_token_hash", "refresh_token_hash", "scope",
                 "issued_at", "expires_in", "refresh_expires_at", "auth_time", "refresh_used_at")
NOW = time.time()


def account_row(n: int, secrets_: dict) -> tuple[str, ...]:
    created = stamp(NOW - 86400 * 30)
    return (account_id(n), email(n), f"Bench Person {n}", "user", secrets_["password_hash"], created, "t",
            secrets_["totp_secret"], created, "0", created, "0", "0")


def grant_row(n: int, client_id: str) -> tuple[str, ...]:
    return (account_id(n), client_id, account_id(n), stamp(NOW - 86400), AMR)


def token_rows(n: int, per_account: int, client_id: str):
    """One family per account: its refreshes so far (rotated, expired) and the live token last,
    issued within the last half hour, whose refresh token is unused."""
    for j in range(per_account):
        index = n * per_account + j
        issued, refresh_expires, used = random.choice(LIVE_STAMPS) if j == per_account - 1 else rotated_stamps(j)
        yield (client_id, account_id(n), account_id(n), sha256(token_value("at", index)),
               sha256(token_value("rt", index)), SCOPE, issued, "3600", refresh_expires, SIGNED_IN, used)


# The times of the seeded tokens, made once (a strftime a row would double the seeding's time):
# the family's sign-in a day ago, an hourly refresh since, the live token within the last half hour.
SIGNED_IN = str(int(NOW - 86400))


@functools.cache
def rotated_stamps(j: int) -> tuple[str, str, str]:
    """(issued, refresh expiry, refreshed) of the family's ``j``-th token, refreshed an hour later."""
    issued = NOW - 86400 + j * 3600
    return stamp(issued), stamp(issued + 30 * 86400), stamp(issued + 3600)


LIVE_STAMPS = [(stamp(NOW - s), stamp(NOW - s + 30 * 86400), NULL) for s in range(0, 1800, 10)]


# -- the provider, in this process ------------------------------------------------------------


@dataclass
class Sample:
    seconds: list[float]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


def idp_cli(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "idp.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"idp {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


class Provider:
    """The provider's app on the bench database, driven with Flask's test client (no network:
    what is measured is the provider's work and its queries)."""

    ISSUER = "http://idp.test"  # the test helpers' browser treats this host as the provider's

    def __init__(self, database_url: str, secret_key: str):
        from idp import create_app

        self.app = create_app({
            "ENV": "production", "ISSUER": self.ISSUER, "DATABASE_URL": database_url, "SECRET_KEY": secret_key,
            "RATELIMIT_ENABLED": False, "REDIS_URL": "", "MAIL_SERVER": "",
            # One staff sign-in serves both sizes, however long the seeding in between takes.
            "SUPPORT_FRESH_LOGIN": 7 * 24 * 3600,
        })
        logging.getLogger().setLevel(logging.WARNING)  # no line per request

    def close(self) -> None:
        from idp.extensions import db

        with self.app.app_context():
            db.engine.dispose()

    def seed_secrets(self, totp_secret: str) -> dict:
        """What every seeded account shares: one Argon2id hash and one sealed TOTP secret."""
        from idp.services import passwords, totp

        with self.app.app_context():
            return {"password_hash": passwords.hash_password(PASSWORD),
                    "totp_secret": "\\\\x" + totp.seal(totp_secret).hex()}

    def browser(self, totp_secret: str | None = None):
        from tests.helpers import Browser

        browser = Browser(self.app)
        browser.totp_secret = totp_secret
        return browser


class Size:
    """One database of the bench at one size, with the provider on it and the operations to time.
    Each operation takes accounts of its own, none used before: a login starts a new family
    (which ends the account's seeded one) and a refresh rotates the live token."""

    def __init__(self, server_url: str, database: str, accounts: int, per_account: int, secret_key: str,
                 totp_secret: str, args):
        self.name = f"{accounts:,} / {accounts * per_account:,}"
        self.server_url, self.database = server_url, database
        self.accounts, self.per_account, self.totp_secret = accounts, per_account, totp_secret
        database_url = sqlalchemy_url(server_url, database)
        create_database(server_url, database, args.replace)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update(IDP_ENV="production", IDP_ISSUER=Provider.ISSUER, IDP_DATABASE_URL=database_url,
                   IDP_SECRET_KEY=secret_key, IDP_INSTANCE_PATH=str(Path("/tmp") / f"{database}-instance"))
        idp_cli(env, "db", "upgrade")
        self.client = json.loads(idp_cli(env, "clients", "create", "--name", "Bench portal", "--first-party",
                                         "--redirect-uri", "http://app.test/callback", "--json"))
        self.staff_email, self.staff_password = "helpdesk@example.com", "Staff-password-" + secrets.token_hex(4)
        idp_cli(env, "staff", "create", "--email", self.staff_email, "--password", self.staff_password)
        self.provider = Provider(database_url, secret_key)
        self.used: set[int] = set()

    def seed(self, shared: dict) -> float:
        print(f"seeding {self.name} accounts / tokens ...", flush=True)
        started = time.monotonic()
        loader = Loader(libpq(self.server_url, self.database))
        loader.load(range(self.accounts), self.per_account, self.client["client_id"], shared)
        seconds = time.monotonic() - started
        print(f"  seeded in {seconds:.0f} s; database {loader.size()}", flush=True)
        loader.close()
        return seconds

    def _fresh(self, count: int) -> list[int]:
        picked = []
        while len(picked) < count:
            n = random.randrange(self.accounts)
            if n not in self.used:
                self.used.add(n)
                picked.append(n)
        return picked

    def operations(self, args) -> dict:
        from tests.helpers import exchange_code, introspect, token_request

        provider, client, per_account = self.provider, self.client, self.per_account
        staff = sign_in_staff(provider, self.staff_email, self.staff_password)
        logins, refreshes = self._fresh(args.logins + WARMUP), self._fresh(args.samples + WARMUP)
        introspected = self._fresh(args.samples + WARMUP)
        http = provider.app.test_client()

        def live(n: int) -> int:
            return n * per_account + per_account - 1

        def login(i):
            browser = provider.browser(self.totp_secret)
            browser.authorize(client["client_id"], scope=SCOPE)
            browser.sign_in(email(logins[i]), PASSWORD)
            response = exchange_code(browser.http, client, browser.callback_params()["code"], browser.verifier)
            assert response.status_code == 200, response.get_json()

        def refresh(i):
            response = token_request(http, client, {"grant_type": "refresh_token",
                                                    "refresh_token": token_value("rt", live(refreshes[i]))})
            assert response.status_code == 200, response.get_json()

        def introspection(i):
            assert introspect(http, client, token_value("at", live(introspected[i])))["active"] is True

        def search(i):
            n = random.randrange(self.accounts)
            response = staff.get(f"/support?q={email(n)[3:14]}")  # e.g. "ch-0001234@": one account
            assert response.status_code == 200 and email(n) in staff.text, response.status_code

        return {"login": (login, args.logins), "refresh": (refresh, args.samples),
                "introspection": (introspection, args.samples), "support search": (search, args.samples)}

    def close(self, keep: bool) -> None:
        self.provider.close()
        if not keep:
            drop_database(self.server_url, self.database)


WARMUP = 10


def measure_side_by_side(sizes: list[Size], args) -> dict[str, dict[str, Sample]]:
    """Every operation at every size, alternating between the sizes call by call (the first
    size first on even calls, last on odd ones), so that whatever else the machine does weighs
    on both alike; ``WARMUP`` untimed calls first."""
    operations = [size.operations(args) for size in sizes]
    results: dict[str, dict[str, Sample]] = {size.name: {} for size in sizes}
    for name in operations[0]:
        count = operations[0][name][1]
        for i in range(WARMUP):
            for ops in operations:
                ops[name][0](count + i)
        seconds = [[] for _ in sizes]
        for i in range(count):
            order = range(len(sizes)) if i % 2 == 0 else reversed(range(len(sizes)))
            for k in order:
                started = time.perf_counter()
                operations[k][name][0](i)
                seconds[k].append(time.perf_counter() - started)
        for size, taken in zip(sizes, seconds):
            results[size.name][name] = Sample(taken)
        print(f"  {name}: {count} at each size", flush=True)
    return results


def sign_in_staff(provider: Provider, staff_email: str, staff_password: str):
    staff = provider.browser()
    staff.get("/support")
    staff.sign_in(staff_email, staff_password, first_time=True)
    if staff.url != "/support":
        raise SystemExit(f"the staff sign-in ended at {staff.url} ({staff.status})")
    return staff


# -- the report ---------------------------------------------------------------------------------


def report(results: dict[str, dict[str, Sample]], sizes: list[str]) -> str:
    small, large = sizes
    lines = [
        f"{'':16} {small:>24} {large:>24} {'ratio':>14}",
        f"{'operation':16} {'p50 ms':>11} {'p99 ms':>12} {'p50 ms':>11} {'p99 ms':>12} {'p50':>6} {'p99':>7}",
    ]
    for name in results[small]:
        a, b = results[small][name], results[large][name]
        lines.append(f"{name:16} {a.percentile(50):11.2f} {a.percentile(99):12.2f} {b.percentile(50):11.2f} "
                     f"{b.percentile(99):12.2f} {b.percentile(50) / a.percentile(50):6.2f} "
                     f"{b.percentile(99) / a.percentile(99):7.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts at the large size")
    parser.add_argument("--tokens", type=int, default=10_000_000, help="tokens at the large size")
    parser.add_argument("--database-url", default=os.environ.get("IDP_TEST_DATABASE_URL",
                                                                  "postgresql+psycopg://postgres@127.0.0.1/postgres"),
                        help="a PostgreSQL server (any database on it; the bench makes its own two)")
    parser.add_argument("--database", default="idp_scale",
                        help="the bench's databases are this name + _small and _large")
    parser.add_argument("--replace", action="store_true", help="drop those databases first if they exist")
    parser.add_argument("--keep", action="store_true", help="keep the databases at the end")
    parser.add_argument("--logins", type=int, default=100, help="logins measured at each size")
    parser.add_argument("--samples", type=int, default=400, help="refreshes, introspections and searches at each size")
    parser.add_argument("--json", help="also write the figures (milliseconds) to this file")
    args = parser.parse_args()
    per_account = max(1, args.tokens // args.accounts)
    if args.accounts <= BASELINE_ACCOUNTS:
        raise SystemExit(f"--accounts must be more than the baseline's {BASELINE_ACCOUNTS}")
    if args.logins + 2 * args.samples + 3 * WARMUP > BASELINE_ACCOUNTS:
        raise SystemExit(f"--logins + 2 x --samples must leave room in the baseline's {BASELINE_ACCOUNTS} accounts")

    secret_key, totp_secret = secrets.token_hex(32), __import__("pyotp").random_base32()
    sizes: list[Size] = []
    timings: dict[str, float] = {}
    try:
        for suffix, accounts in (("_small", BASELINE_ACCOUNTS), ("_large", args.accounts)):
            sizes.append(Size(args.database_url, args.database + suffix, accounts, per_account, secret_key,
                              totp_secret, args))
        shared = sizes[0].provider.seed_secrets(totp_secret)
        for size in sizes:
            timings[size.name] = size.seed(shared)
        print("measuring, alternating between the sizes ...", flush=True)
        results = measure_side_by_side(sizes, args)
    finally:
        for size in sizes:
            size.close(args.keep)
    names = [size.name for size in sizes]
    print()
    print(f"accounts / tokens ({per_account} tokens a family, the last one live); {args.logins} logins and "
          f"{args.samples} of each other operation per size")
    print(report(results, names))
    print("seeding (COPY, indexes built after): " + ", ".join(f"{size}: {s:.0f} s" for size, s in timings.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "seconds_seeding": timings,
            "milliseconds": {size: {name: {"p50": s.percentile(50), "p99": s.percentile(99)}
                                    for name, s in ops.items()} for size, ops in results.items()},
        }, indent=2))


if __name__ == "__main__":
    main()
