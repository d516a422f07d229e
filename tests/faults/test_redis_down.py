"""Redis (the rate limits) stopped under a running `idp serve`: the steps that count tries answer
a clear 503 (a page for a person, JSON for what scripts fetch), discovery, JWKS and tokens keep
working, /readyz names Redis; all of it recovers by itself once Redis is back."""

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
        "login challenge": (requests.get(provider.url + "/login/challenge", timeout=15), None),
        "signup challenge": (requests.get(provider.url + "/signup/challenge", timeout=15), None),
        "token": (client_credentials(provider, clients["m2m"]), None),
        "discovery": (requests.get(provider.url + "/.well-known/openid-configuration", timeout=15), None),
        "jwks": (requests.get(provider.url + "/jwks.json", timeout=15), None),
        "readyz": (requests.get(provider.url + "/readyz", timeout=15), None),
    }


PASSWORD = "correct horse battery staple"


def _at_step(provider, clients, sink, email: str, state: str) -> Visitor:
    """A person signing in for the first time, stopped at ``state`` (password or email_code)."""
    person = Visitor(provider.url)
    person.authorize(clients["app"]["client_id"])
    person.submit(email=email)
    if state == "email_code":
        person.submit(password=PASSWORD)
        assert person.state == "verify_email", (person.response.status_code, person.alert)
        person.submit(email=email)
        person.email_code = sink.code_for(email)
    assert person.state == state, (person.response.status_code, person.alert)
    person.step_url = person.url
    return person


def _press(person: Visitor, state: str) -> requests.Response:
    """The person presses the step's button (again: the page is loaded anew first)."""
    if person.state != state:
        person.go("GET", person.step_url)
    assert person.state == state, (person.response.status_code, person.alert)
    if state == "password":
        return person.submit(password=PASSWORD)
    return person.submit(email_code=person.email_code)


def test_redis_down_refuses_the_counted_steps_clearly_and_recovers(serve, redis_server, sink):
    provider, _server = serve(workers=2, REDIS_URL=redis_server.url)
    clients = {
        "app": provider.cli_json("clients", "create", "--name", "App", "--first-party", "--redirect-uri",
                                 "http://app.test/callback", "--json"),
        "m2m": provider.cli_json("clients", "create", "--name", "Batch", "--grant-type", "client_credentials",
                                 "--json"),
    }
    up = _walk(provider, clients)
    assert {name: r.status_code for name, (r, _) in up.items()} == {
        "sign-in step": 200, "captcha challenge": 200, "login challenge": 200, "signup challenge": 200, "token": 200, "discovery": 200,
        "jwks": 200, "readyz": 200}
    steps = {}
    for state in ("password", "email_code"):
        email = f"{state.replace('_', '-')}@example.com"
        provider.cli_json("users", "create", "--email", email, "--password", PASSWORD, "--json")
        steps[state] = _at_step(provider, clients, sink, email, state)

    before = provider.log_size()
    redis_server.kill()
    down = _walk(provider, clients)
    statuses = {name: r.status_code for name, (r, _) in down.items()}
    assert statuses == {
        "sign-in step": 503, "captcha challenge": 503, "login challenge": 503, "signup challenge": 503, "token": 200, "discovery": 200,
        "jwks": 200, "readyz": 503}
    step, person = down["sign-in step"]
    assert "temporarily unavailable" in person.alert.lower(), step.text[:1000]
    for name in ("captcha challenge", "login challenge", "signup challenge"):
        assert down[name][0].headers["Content-Type"].startswith("application/json"), name
        assert down[name][0].json()["error"] == "temporarily_unavailable", name
        assert down[name][0].headers["Retry-After"]
    for state, person in steps.items():
        pressed = _press(person, state)
        assert pressed.status_code == 503, (state, pressed.status_code, pressed.text[:500])
        assert "temporarily unavailable" in person.alert.lower(), (state, pressed.text[:1000])
        assert "Traceback" not in pressed.text, state
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
        "sign-in step": 200, "captcha challenge": 200, "login challenge": 200, "signup challenge": 200, "token": 200, "discovery": 200,
        "jwks": 200, "readyz": 200}
    assert again["sign-in step"][1].state == "password"
    # The steps refused while Redis was away go on where they were.
    assert _press(steps["password"], "password").status_code == 200
    assert steps["password"].state == "verify_email", steps["password"].alert
    assert _press(steps["email_code"], "email_code").status_code == 200
    assert steps["email_code"].state == "totp_enroll", steps["email_code"].alert
