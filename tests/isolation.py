"""What keeps parallel test workers apart: a PostgreSQL database and a Redis key prefix per
xdist worker, both derived from the URLs the run was given."""

from __future__ import annotations

import os

# "gw0", "gw1", ... under pytest -n; empty in a run without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _libpq(url):
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_database(url: str, name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the server of ``url``, created when
    missing (the user of ``url`` may CREATE DATABASE)."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{name}"')
            except psycopg.errors.DuplicateDatabase:  # another worker created it first
                pass
    return base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def worker_database(url: str, worker: str = WORKER, suffix: str = "") -> str:
    """The database this worker uses: the URL's own without xdist, else ``<db>_<worker>``;
    ``suffix`` names a further one (``_e2e``) for the same worker."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database or "postgres"
    name += suffix + (f"_{worker}" if worker else "")
    if name == make_url(url).database:
        return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return ensure_database(url, name)


def redis_key_prefix(worker: str = WORKER) -> str:
    """The rate-limit storage prefix for this worker (limits' default is ``LIMITS``); a
    worker's ``limiter.reset()`` clears only its own keys."""
    return f"LIMITS_{worker}" if worker else "LIMITS"
