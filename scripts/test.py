"""Run the whole test suite: once on SQLite, once more on PostgreSQL and Redis when
IDP_TEST_DATABASE_URL (and IDP_TEST_REDIS_URL) are set.

The suite runs on parallel workers (pytest-xdist): IDP_TEST_WORKERS of them, 2 unless set
(``auto`` = one per CPU, ``0`` = no xdist). On PostgreSQL each worker creates and uses its
own database named after the URL's (``<db>_gw0``, ...; the e2e servers use ``<db>_e2e_<worker>``).
"""

from __future__ import annotations

import os
import subprocess
import sys


def run(label: str, env: dict, args: list[str]) -> int:
    print(f"\n=== tests on {label} ===", flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *args], env=env)


def main() -> int:
    args = sys.argv[1:]
    if not any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in args):
        args = ["-n", os.environ.get("IDP_TEST_WORKERS", "2"), *args]
    base = dict(os.environ)
    pg = base.get("IDP_TEST_DATABASE_URL")
    sqlite_env = {k: v for k, v in base.items() if k not in ("IDP_TEST_DATABASE_URL", "IDP_TEST_REDIS_URL")}
    status = run("SQLite", sqlite_env, args)
    if pg:
        status = run("PostgreSQL + Redis", base, args) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
