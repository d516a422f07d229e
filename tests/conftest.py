"""Fixtures: a fresh app per test on SQLite, or on PostgreSQL when IDP_TEST_DATABASE_URL is set.

Under ``pytest -n`` every xdist worker gets its own PostgreSQL database (``<db>_<worker>``,
created when missing) and its own Redis key prefix, so workers never see each other's rows
or rate-limit counters.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from idp import clock, create_app
from idp.extensions import db, limiter
from idp.services import keys

from .helpers import Browser, cli_runner, make_account, make_client, signed_in_browser
from .isolation import WORKER, redis_key_prefix, worker_database

TEST_DB = os.environ.get("IDP_TEST_DATABASE_URL")
TEST_REDIS = os.environ.get("IDP_TEST_REDIS_URL")
ISSUER = "http://idp.test"

_schema_ready: set[str] = set()
_sqlite_template: Path | None = None  # this test process's schema-only SQLite file


@pytest.fixture(scope="session")
def _worker_db_url():
    return worker_database(TEST_DB, WORKER) if TEST_DB else None


@pytest.fixture
def db_url(tmp_path, _worker_db_url):
    return _worker_db_url or f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def app(db_url, tmp_path, tmp_path_factory, request):
    extra = getattr(request, "param", None) or {}
    config = {
        "TESTING": True,
        "ENV": "development",
        "ISSUER": ISSUER,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "RATELIMIT_ENABLED": False,
        "REDIS_URL": "",
        "EMAIL_CODE_RESEND_INTERVAL": 30,
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": redis_key_prefix(WORKER)},
    }
    marker = request.node.get_closest_marker("config")
    if marker:
        config.update(marker.kwargs)
    config.update(extra)
    os.environ["IDP_INSTANCE_PATH"] = str(tmp_path / "instance")
    app = create_app(config)
    with app.app_context():
        if db_url.startswith("postgresql"):
            if db_url not in _schema_ready:
                db.drop_all()
                db.create_all()
                _schema_ready.add(db_url)
            else:
                _empty_postgresql()
        elif config["DATABASE_URL"] == db_url:
            _copy_sqlite_schema(db_url, tmp_path_factory)
        else:
            db.create_all()
        keys.clear_cache()
        if app.config["RATELIMIT_ENABLED"]:
            limiter.reset()
    # No app context stays pushed while the test runs: each request gets its own,
    # as in production (g and the database session do not leak between requests).
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    keys.clear_cache()
    clock.freeze(None)


def _empty_postgresql() -> None:
    """Every table emptied and every sequence started over, in one transaction: DELETE on the
    few rows a test leaves costs about a tenth of TRUNCATE, which gives each table and index a
    new file and waits for them on disk."""
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.execute(text(
        "SELECT setval(c.oid, 1, false) FROM pg_class c"
        " WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace"))
    db.session.commit()


def _copy_sqlite_schema(db_url: str, tmp_path_factory) -> None:
    """The test's SQLite file as a copy of one made by ``create_all`` once per test process
    (a copy takes about a millisecond, ``create_all`` about thirty)."""
    global _sqlite_template
    target = db_url.removeprefix("sqlite:///")
    if _sqlite_template is None:
        db.create_all()
        db.session.remove()
        db.engine.dispose()  # the file whole, its write-ahead log folded in
        _sqlite_template = tmp_path_factory.mktemp("schema") / "schema.db"
        shutil.copyfile(target, _sqlite_template)
        return
    db.engine.dispose()
    shutil.copyfile(_sqlite_template, target)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def browser(app):
    return Browser(app)


@pytest.fixture
def cli(app):
    return cli_runner(app)


@pytest.fixture
def portal(app):
    """A first-party confidential client like the bookkeeping portal."""
    return make_client(app, name="Bookkeeping portal", first_party=True)


@pytest.fixture
def public_app(app):
    """A public client (no secret, PKCE always) like a browser or native app."""
    return make_client(app, name="Invoicing app", first_party=True, public=True)


@pytest.fixture
def signed_in(browser, portal, person):
    """A browser after a first sign-in at the portal (the clock frozen at a fixed morning)."""
    return signed_in_browser(browser, portal, person)


@pytest.fixture
def third_party(app):
    return make_client(app, name="Scan service", first_party=False)


@pytest.fixture
def person(app):
    return make_account(app, "anna@example.com", "correct horse battery staple", name="Anna de Vries")
