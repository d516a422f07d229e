"""Redis (the rate limits) stopped under a running `idp serve`: the steps that count tries answer
a clear 503, discovery, JWKS and tokens keep working, /readyz names Redis; all of it recovers
by itself once Redis is back."""

from __future__ import annotations

import requests

from tests.live import Visitor

from .conftest import client_credentials


def _walk(provider, clients):
    """The sign-in's e-mail step, the CAPTCHA challenge, a token, discovery, JWKS and /readyz."""
    person = Visitor(provider.url)
    person.authorize(clients["app"]["client_id"])
    assert person.state == "email", (person.response.status_code, person.response.text[:500])
    step = person.submit(email="anna@example.com")
    return {
        "sign-in step": (step, person),
        "captcha challenge": (requests.get(provider.url + "/connector-password/challenge", timeout=15), None),
        "token": (client_credentials(provider, clients["m2m"]), None),
        "discovery": (requests.get(provider.url + "/.well-known/openid-configuration", timeout=15), None),
        "jwks": (requests.get(provider.url + "/jwks.json", timeout=15), None),
        "readyz": (requests.get(provider.url + "/readyz", timeout=15), None),
    }


def test_redis_down_refuses_the_counted_steps_clearly_and_recovers(serve, redis_server):
    provider, _server = serve(workers=2, REDIS_URL=redis_server.url)
    clients = {
        "app": provider.cli_json("clients", "create", "--name", "App", "--first-party", "--redirect-uri",
                                 "http://app.test/callback", "--json"),
        "m2m": provider.cli_json("clients", "create", "--name", "Batch", "--grant-type", "client_credentials",
                                 "--json"),
    }
    up = _walk(provider, clients)
    assert {name: r.status_code for name, (r, _) in up.items()} == {
        "sign-in step": 200, "captcha challenge": 200, "token": 200, "discovery": 200, "jwks": 200, "readyz": 200}

    before = provider.log_size()
    redis_server.kill()
    down = _walk(provider, clients)
    statuses = {name: r.status_code for name, (r, _) in down.items()}
    assert statuses == {
        "sign-in step": 503, "captcha challenge": 503, "token": 200, "discovery": 200, "jwks": 200, "readyz": 503}
    step, person = down["sign-in step"]
    assert "temporarily unavailable" in person.alert.lower(), step.text[:1000]
    assert down["captcha challenge"][0].json()["error"] == "temporarily_unavailable"
    assert down["token"][0].json()["access_token"]
    assert down["readyz"][0].json()["checks"]["redis"] == "unavailable"
    for name, (response, _) in down.items():
        assert "Traceback" not in response.text, name
    provider.wait_for_log("rate limits unavailable", since=before)
    with open(provider.log, "rb") as log:
        log.seek(before)
        assert b"Traceback" not in log.read()

    redis_server.start()  # the same port; no restart of idp serve
    again = _walk(provider, clients)
    assert {name: r.status_code for name, (r, _) in again.items()} == {
        "sign-in step": 200, "captcha challenge": 200, "token": 200, "discovery": 200, "jwks": 200, "readyz": 200}
    assert again["sign-in step"][1].state == "password"
