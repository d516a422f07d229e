"""Upgrading a database that holds tokens: every family gets its grant, clients keep the
methods they could use, and no client's tokens are lost on the way (SQLite's table
rebuilds cascade deletes)."""

from __future__ import annotations

import sqlite3

from ..helpers import run_idp

ROWS = """
insert into clients (id, name, redirect_uris, post_logout_redirect_uris, grant_types, scope,
  token_endpoint_auth_method, first_party, pkce_required, created_at)
  values ('c1', 'C', '[]', '[]', '[]', 'openid', 'client_secret_basic', 1, 1, '2026-01-01');
insert into accounts (id, email, name, role, email_verified, totp_last_counter, failed_attempts, lockouts, created_at)
  values ('a1', 'a@example.com', 'A', 'user', 1, 0, 0, 0, '2026-01-01');
insert into tokens (client_id, account_id, grant_id, access_token_hash, scope, issued_at, expires_in)
  values ('c1', 'a1', 'g1', 'h1', 'openid', '2026-01-01', 3600), ('c1', 'a1', 'g1', 'h2', 'openid', '2026-01-02', 3600);
insert into authorization_codes (code_hash, client_id, account_id, grant_id, redirect_uri, scope, auth_time, amr,
  created_at, expires_at) values ('k1', 'c1', 'a1', 'g2', '', '', 0, '[]', '2026-01-01', '2026-01-01');
"""


def test_upgrading_keeps_tokens_and_gives_each_family_a_grant(tmp_path):
    path = tmp_path / "m.db"
    env = {"IDP_DATABASE_URL": f"sqlite:///{path}"}
    assert run_idp(env, "db", "upgrade", "0001", tmp_path=tmp_path).returncode == 0
    with sqlite3.connect(path) as db:
        db.executescript(ROWS)
    upgraded = run_idp(env, "db", "upgrade", tmp_path=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("select count(*) from tokens").fetchone() == (2,)
        assert db.execute("select count(*) from authorization_codes").fetchone() == (1,)
        assert db.execute("select id, client_id, account_id, revoked_at from grants order by id").fetchall() == [
            ("g1", "c1", "a1", None), ("g2", "c1", "a1", None)]
        assert db.execute("select token_endpoint_auth_method from clients").fetchone() == (
            "client_secret_basic client_secret_post",)
