"""Settings for many instances: start-up stops with one line when they are missing or malformed."""

from __future__ import annotations

import pytest

from ..helpers import run_idp

PRODUCTION = {"IDP_ENV": "production", "IDP_ISSUER": "https://login.example.com"}
SHARED_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/idp_d"


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    return lines[0]


def test_production_on_a_shared_database_needs_the_secret_key(tmp_path):
    result = run_idp({**PRODUCTION, "IDP_DATABASE_URL": SHARED_DB}, "audit", "list", tmp_path=tmp_path)
    line = one_line(result)
    assert "IDP_SECRET_KEY must be set" in line
    assert not (tmp_path / "secret_key").exists(), "no instance secret is made up"


def test_production_on_sqlite_keeps_its_generated_secret(tmp_path):
    env = {**PRODUCTION, "IDP_DATABASE_URL": f"sqlite:///{tmp_path}/idp.db"}
    assert run_idp(env, "db", "upgrade", tmp_path=tmp_path).returncode == 0
    result = run_idp(env, "audit", "list", "--json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    "env,fragment",
    [
        ({"IDP_TRUSTED_PROXIES": "-1"}, "IDP_TRUSTED_PROXIES"),
        ({"IDP_TRUSTED_PROXIES": "two"}, "IDP_TRUSTED_PROXIES"),
        ({"IDP_LOG_FORMAT": "xml"}, "IDP_LOG_FORMAT"),
        ({"IDP_METRICS_TOKEN": "short"}, "IDP_METRICS_TOKEN"),
        ({"IDP_PRUNE_BATCH_SIZE": "0"}, "IDP_PRUNE_BATCH_SIZE"),
    ],
)
def test_malformed_operations_settings_stop_with_one_line(env, fragment, tmp_path):
    assert fragment in one_line(run_idp(env, "audit", "list", tmp_path=tmp_path))
