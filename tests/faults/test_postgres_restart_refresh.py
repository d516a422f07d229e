"""Refresh tokens through a PostgreSQL restart under a running `idp serve`. The rotation reads the
presented token and, for an offline family, claims it and saves its successor in one statement,
both on connections kept beside the pool (services.tokens.Rotation): while the database is away
every refresh is a clear 503 ``temporarily_unavailable``, never a 500, and the token it
presented stays usable; once the database is back a read on a connection the restart closed is
tried again on a new one, and the family rotates on as before."""

from __future__ import annotations

import requests

from tests.live import first_login

from .conftest import across_a_restart


def _refresh(provider, client, token: str) -> tuple[int, dict | str]:
    try:
        response = requests.post(provider.url + "/token", data={"grant_type": "refresh_token", "refresh_token": token},
                                 auth=(client["client_id"], client["client_secret"]), timeout=15)
    except requests.RequestException as exc:  # the server must answer, even now
        return 0, repr(exc)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def test_refreshes_during_a_database_restart_get_a_clear_503_and_the_family_rotates_on(serve, postgres, sink):
    cluster = postgres
    provider, _server = serve(workers=1, database_url=cluster.url, PRUNE_INTERVAL=0)
    client = provider.cli_json("clients", "create", "--name", "Portal", "--first-party", "--redirect-uri",
                               "http://app.test/callback", "--json")
    person, _totp, _ids = first_login(provider, provider.url, sink, client, scope="openid email offline_access")
    exchanged = person.exchange(client)
    assert exchanged.status_code == 200, exchanged.text
    token = exchanged.json()["refresh_token"]
    for _ in range(3):  # the worker's kept connections are in use
        status, body = _refresh(provider, client, token)
        assert status == 200, body
        token = body["refresh_token"]
    before = provider.log_size()

    away, back = across_a_restart(cluster, lambda: _refresh(provider, client, token))

    assert all(status == 503 and isinstance(body, dict) and body.get("error") == "temporarily_unavailable"
               for status, body in away), away
    assert back is not None, "the refresh did not recover"
    token = back["refresh_token"]
    for _ in range(3):
        status, body = _refresh(provider, client, token)
        assert status == 200, body
        token = body["refresh_token"]
    provider.assert_no_unhandled_error(since=before)
