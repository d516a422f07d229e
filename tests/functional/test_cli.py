"""The `idp` command as operators and tests use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from ..helpers import run_idp


@pytest.mark.parametrize(
    "env,fragment",
    [
        ({"IDP_DATABASE_URL": "mysql://root@localhost/x"}, "unknown driver"),
        ({"IDP_ISSUER": "not a url"}, "IDP_ISSUER"),
        ({"IDP_ENV": "production"}, "IDP_ISSUER must be set"),
        ({"IDP_ENV": "staging"}, "IDP_ENV"),
        ({"IDP_SECRET_KEY": "dev"}, "IDP_SECRET_KEY"),
        ({"IDP_MAIL_SERVER": "smtp.local", "IDP_MAIL_PORT": "abc"}, "IDP_MAIL_PORT"),
        ({"IDP_REDIS_URL": "localhost:6379"}, "IDP_REDIS_URL"),
        ({"IDP_RATELIMIT_ENABLED": "maybe"}, "IDP_RATELIMIT_ENABLED"),
    ],
)
def test_bad_settings_stop_with_one_line(env, fragment, tmp_path):
    result = run_idp(env, "accounts", "show", "x@example.com", tmp_path=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_help_lists_every_command_and_only_the_products(tmp_path):
    result = run_idp({}, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "db", "clients", "users", "firms", "accounts", "keys", "mail", "audit"):
        assert f"  {command} " in result.stdout
    # Nothing of Flask's own command line nor of the packages that plug into it.
    for foreign in ("--app", "--debug", "--env-file", "limiter", "routes", "shell"):
        assert foreign not in result.stdout, result.stdout


def test_a_database_without_tables_says_what_to_do(tmp_path):
    result = run_idp({"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}, "accounts", "show", "a@example.com",
                     tmp_path=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "idp db upgrade" in lines[0], result.stderr


def test_db_upgrade_on_a_fresh_database(tmp_path):
    result = run_idp({"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}, "db", "upgrade", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run_idp({"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}, "users", "create", "--email", "a@example.com",
                     "--password", STRONG, "--json", tmp_path=tmp_path)
    assert result.returncode == 0 and "sub" in json.loads(result.stdout)
    # Without --password: from standard input (not a terminal here), so it is not in the process list.
    piped = subprocess.run([sys.executable, "-m", "idp.cli", "staff", "create", "--email", "s@example.com", "--json"],
                           input=STRONG + "\n", capture_output=True, text=True, timeout=60,
                           env={**{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
                                "IDP_INSTANCE_PATH": str(tmp_path), "IDP_ENV": "development",
                                "IDP_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"})
    assert piped.returncode == 0 and "sub" in json.loads(piped.stdout), piped.stderr


def test_clients_create(cli):
    result = cli.invoke(args=["clients", "create", "--name", "Portal", "--redirect-uri", "https://p.example/cb", "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["client_id"] and len(data["client_secret"]) >= 43
    public = json.loads(cli.invoke(args=["clients", "create", "--name", "App", "--public",
                                         "--redirect-uri", "https://p.example/cb", "--json"]).output)
    assert "client_secret" not in public


@pytest.mark.parametrize(
    "args",
    [
        ["--redirect-uri", "javascript:alert(1)"],
        ["--redirect-uri", "https://p.example/cb#frag"],
        ["--grant-type", "authorization_code"],
        ["--scope", "everything", "--redirect-uri", "https://p.example/cb"],
        ["--public", "--grant-type", "client_credentials"],
    ],
)
def test_clients_create_refuses_bad_input(cli, args):
    result = cli.invoke(args=["clients", "create", "--name", "X", "--json", *args])
    assert result.exit_code != 0 and "Error" in result.output


STRONG = "Lantaarn-fiets-88-Zee"


def test_users_create_and_accounts_show(cli):
    created = json.loads(cli.invoke(args=["users", "create", "--email", "Bob@Example.com", "--password", STRONG,
                                          "--json"]).output)
    shown = json.loads(cli.invoke(args=["accounts", "show", "bob@example.com", "--json"]).output)
    assert shown == {"sub": created["sub"], "email": "bob@example.com", "status": "active",
                     "email_verified": False, "totp_enrolled": False, "passkeys": 0}
    duplicate = cli.invoke(args=["users", "create", "--email", "bob@example.com", "--password", STRONG, "--json"])
    assert duplicate.exit_code != 0
    assert cli.invoke(args=["users", "create", "--email", "not-an-address", "--password", STRONG]).exit_code != 0
    assert cli.invoke(args=["accounts", "show", "nobody@example.com"]).exit_code != 0


@pytest.mark.parametrize("command", ["users", "staff"])
def test_create_applies_the_password_policy(cli, command):
    weak = cli.invoke(args=[command, "create", "--email", "carla@example.com", "--password", "carla2026", "--json"])
    assert weak.exit_code != 0
    assert "shorter than 12 characters" in weak.output and "e-mail address or name" in weak.output, weak.output
    assert cli.invoke(args=["accounts", "show", "carla@example.com"]).exit_code != 0  # nothing was created


def test_create_reads_the_password_from_a_file_or_a_prompt(cli, tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text(STRONG + "\n")
    assert cli.invoke(args=["users", "create", "--email", "f@example.com", "--password-file", str(secret)]).exit_code == 0
    # At a terminal: asked twice, hidden; two different answers are asked again.
    monkeypatch.setattr("idp.cli.people.at_terminal", lambda: True)
    prompted = cli.invoke(args=["staff", "create", "--email", "p@example.com"],
                          input=f"{STRONG}\nsomething else\n{STRONG}\n{STRONG}\n")
    assert prompted.exit_code == 0, prompted.output
    assert prompted.output.count("Password again") == 2 and STRONG not in prompted.output
    both = cli.invoke(args=["users", "create", "--email", "b@example.com", "--password", STRONG,
                            "--password-file", str(secret)])
    assert both.exit_code != 0
    for email in ("f@example.com", "p@example.com"):
        assert json.loads(cli.invoke(args=["accounts", "show", email, "--json"]).output)["email"] == email


def test_firms_create(cli):
    data = json.loads(cli.invoke(args=["firms", "create", "--name", "Boekhouders BV", "--json"]).output)
    assert data["administration_id"]


def test_audit_list(cli, browser, portal, person):
    browser.authorize(portal["client_id"])
    browser.submit(email=person["email"])
    browser.submit(password="wrong")
    events = json.loads(cli.invoke(args=["audit", "list", "--subject", person["email"], "--json"]).output)
    assert events[0]["action"] == "login.password" and events[0]["subject"] == person["email"]
    assert set(events[0]) >= {"at", "actor", "action", "subject", "reason", "ip"}
    assert [e["action"] for e in events][-1] == "account.created"


def test_mail_deliver_once(cli):
    result = cli.invoke(args=["mail", "deliver"])
    assert result.exit_code == 0


def _applies_to(dialect: str):
    """Alembic's include_object: leave out what the models create on another dialect only
    (``ddl_if``: the trigram indexes are PostgreSQL's)."""
    def include(obj, name, type_, reflected, compare_to):
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)
    return include


def _migrated_schema_diff(url: str, tmp_path) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    result = run_idp({"IDP_DATABASE_URL": url}, "db", "upgrade", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    from idp.extensions import db
    import idp.models  # noqa: F401

    engine = create_engine(url)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            # SQLite cannot reflect expression indexes: alembic compares them on PostgreSQL only.
            warnings.filterwarnings("ignore", message=".*(expression-based index|can't reflect these indexes)")
            context = MigrationContext.configure(
                connection, opts={"include_object": _applies_to(connection.dialect.name)})
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def test_migrations_match_the_models(tmp_path):
    """`idp db upgrade` creates exactly the schema the models describe."""
    assert _migrated_schema_diff(f"sqlite:///{tmp_path}/m.db", tmp_path) == []


@pytest.mark.skipif(not os.environ.get("IDP_TEST_DATABASE_URL"), reason="needs IDP_TEST_DATABASE_URL")
def test_migrations_match_the_models_on_postgresql(tmp_path):
    """The same on PostgreSQL, with its own indexes (trigrams, built concurrently)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.isolation import worker_database

    url = worker_database(os.environ["IDP_TEST_DATABASE_URL"], suffix="_migrations")
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    assert _migrated_schema_diff(url, tmp_path) == []


def test_serve_without_delivery_runs_no_delivery_loop_and_says_so(app, caplog, monkeypatch):
    """--no-delivery (formerly --no-mail) stops the whole delivery loop, mail and back-channel
    logouts alike: the help and the log say so."""
    from idp.cli.serve import serve
    from idp.ops import serving

    (flag,) = [p for p in serve.params if p.name == "no_delivery"]
    assert flag.opts == ["--no-delivery", "--no-mail"] and "back-channel logouts" in flag.help
    # This test process keeps counting in memory, not in a directory of samples.
    monkeypatch.setattr(serving.metrics, "enable_multiprocess", lambda directory: None)
    monkeypatch.setitem(app.config, "PRUNE_INTERVAL", 0)
    from idp import sqlite_checkpoints
    from idp.extensions import db

    with app.app_context():
        on_a_file = sqlite_checkpoints.database_file(db.engine) is not None
    others = ["checkpoint loop"] if on_a_file else []  # SQLite's checkpoints run whatever the flag
    with caplog.at_level("WARNING", logger="idp.ops.serving"):
        sidecars = serving.start(app, delivery=False)
    sidecars.stop()
    assert [loop.name for loop in sidecars.loops] == others
    assert "mail and back-channel logouts stay queued" in caplog.text
    sidecars = serving.start(app, delivery=True)
    sidecars.stop()
    assert [loop.name for loop in sidecars.loops] == ["delivery loop", *others]


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_serve_answers_on_both_servers(server, tmp_path):
    import signal
    import time
    import urllib.request

    from tests.smtp_sink import free_port

    port = free_port()
    env = {"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "IDP_ISSUER": f"http://127.0.0.1:{port}",
           "XDG_RUNTIME_DIR": str(tmp_path)}
    assert run_idp(env, "db", "upgrade", tmp_path=tmp_path).returncode == 0
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    full_env.update({"IDP_INSTANCE_PATH": str(tmp_path), "IDP_ENV": "development", **env})
    proc = subprocess.Popen([sys.executable, "-m", "idp.cli", "serve", "--port", str(port), "--workers", "1",
                             "--server", server, "--no-delivery"], env=full_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=2) as r:
                    assert json.load(r)["issuer"] == f"http://127.0.0.1:{port}"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
