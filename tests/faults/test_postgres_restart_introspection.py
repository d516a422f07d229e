"""Introspection through a PostgreSQL restart under a running `idp serve`. Its token lookups run on
DB-API connections kept beside the pool (unit_of_work.read_first and read_scalar, idp.readers):
while the database is away every answer is a clear 503 ``temporarily_unavailable``, never a 500;
once it is back a read on a connection the restart closed is tried again on a new one, and every
answer is 200."""

from __future__ import annotations

import requests

from .conftest import across_a_restart, client_credentials


def _introspect(provider, client, token: str) -> tuple[int, str]:
    try:
        response = requests.post(provider.url + "/introspect", data={"token": token},
                                 auth=(client["client_id"], client["client_secret"]), timeout=15)
    except requests.RequestException as exc:  # the server must answer, even now
        return 0, repr(exc)
    return response.status_code, response.text


def test_introspection_during_a_database_restart_gets_a_clear_503_and_recovers(serve, postgres):
    cluster = postgres
    provider, _server = serve(workers=1, database_url=cluster.url, PRUNE_INTERVAL=0)
    client = provider.cli_json("clients", "create", "--name", "API", "--grant-type", "client_credentials",
                               "--resource-server", "--json")
    token = client_credentials(provider, client).json()["access_token"]  # self-contained: its revocation is read
    for _ in range(3):  # the worker's kept connections are in use
        status, body = _introspect(provider, client, token)
        assert status == 200 and '"active": true' in body, body
    before = provider.log_size()

    away, back = across_a_restart(cluster, lambda: _introspect(provider, client, token))

    assert all(status == 503 and "temporarily_unavailable" in body for status, body in away), away
    assert back is not None and '"active": true' in back, "introspection did not recover"
    assert all(_introspect(provider, client, token)[0] == 200 for _ in range(5))
    provider.assert_no_unhandled_error(since=before)
