"""Upgrading a database that holds firms and administrations (migration 0009): every firm
gets its own code, nothing else changes, and downgrading keeps every membership (SQLite's
table rebuilds would cascade deletes)."""

from __future__ import annotations

import re
import sqlite3

from tests.helpers import run_idp

ROWS = """
insert into administrations (id, name, kind, plan, created_at) values
  ('f1', 'Boekhouders BV', 'firm', 'basic', '2026-01-01'),
  ('f2', 'Cijfers BV', 'firm', 'basic', '2026-01-01'),
  ('c1', 'Bakkerij Jansen', 'company', 'basic', '2026-01-01');
insert into accounts (id, email, name, role, email_verified, totp_last_counter, failed_attempts, lockouts, created_at)
  values ('a1', 'a@example.com', 'A', 'user', 1, 0, 0, 0, '2026-01-01');
insert into memberships (account_id, administration_id, role, created_at) values
  ('a1', 'c1', 'owner', '2026-01-01'), ('a1', 'f1', 'accountant', '2026-01-01');
insert into firm_clients (firm_id, administration_id, created_at) values ('f1', 'c1', '2026-01-01');
"""


def test_every_firm_gets_a_code_and_nothing_is_lost_either_way(tmp_path):
    path = tmp_path / "m.db"
    env = {"IDP_DATABASE_URL": f"sqlite:///{path}"}
    assert run_idp(env, "db", "upgrade", "0008", tmp_path=tmp_path).returncode == 0
    with sqlite3.connect(path) as db:
        db.executescript(ROWS)
    upgraded = run_idp(env, "db", "upgrade", tmp_path=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    with sqlite3.connect(path) as db:
        codes = dict(db.execute("select id, firm_code from administrations").fetchall())
        assert codes["c1"] is None and codes["f1"] != codes["f2"]
        assert all(re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", codes[f]) for f in ("f1", "f2"))
        assert db.execute("select count(*) from memberships").fetchone() == (2,)
        assert db.execute("select count(*) from firm_clients").fetchone() == (1,)
    downgraded = run_idp(env, "db", "downgrade", "0008", tmp_path=tmp_path)
    assert downgraded.returncode == 0, downgraded.stderr
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("pragma table_info(administrations)")}
        assert "firm_code" not in columns and "trial_ends_at" not in columns
        assert db.execute("select count(*) from memberships").fetchone() == (2,)
        assert db.execute("select count(*) from firm_clients").fetchone() == (1,)
