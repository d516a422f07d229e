"""The `idp` command as operators and tests use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run_idp(env_extra: dict, *args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({"IDP_INSTANCE_PATH": str(tmp_path), "IDP_ENV": "development"})
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "idp.cli", *args], env=env, capture_output=True, text=True, timeout=60)


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


def test_help_lists_every_command(tmp_path):
    result = run_idp({}, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "db", "clients", "users", "firms", "accounts", "keys", "mail", "audit"):
        assert f"  {command} " in result.stdout


def test_db_upgrade_on_a_fresh_database(tmp_path):
    result = run_idp({"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}, "db", "upgrade", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run_idp({"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}, "users", "create", "--email", "a@example.com",
                     "--password", "pw", "--json", tmp_path=tmp_path)
    assert result.returncode == 0 and "sub" in json.loads(result.stdout)


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


def test_users_create_and_accounts_show(cli):
    created = json.loads(cli.invoke(args=["users", "create", "--email", "Bob@Example.com", "--password", "pw", "--json"]).output)
    shown = json.loads(cli.invoke(args=["accounts", "show", "bob@example.com", "--json"]).output)
    assert shown == {"sub": created["sub"], "email": "bob@example.com", "status": "active",
                     "email_verified": False, "totp_enrolled": False, "passkeys": 0}
    duplicate = cli.invoke(args=["users", "create", "--email", "bob@example.com", "--password", "pw", "--json"])
    assert duplicate.exit_code != 0
    assert cli.invoke(args=["users", "create", "--email", "not-an-address", "--password", "pw"]).exit_code != 0
    assert cli.invoke(args=["accounts", "show", "nobody@example.com"]).exit_code != 0


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


def test_migrations_match_the_models(tmp_path):
    """`idp db upgrade` creates exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path}/m.db"
    assert run_idp({"IDP_DATABASE_URL": url}, "db", "upgrade", tmp_path=tmp_path).returncode == 0
    from idp.extensions import db
    import idp.models  # noqa: F401

    with create_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []


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
                             "--server", server, "--no-mail"], env=full_env, start_new_session=True,
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
