"""Redis (the rate limits) stopped under a running `idp serve`: the steps that count tries answer
a clear 503 (a page for a person, JSON for what scripts fetch), discovery, JWKS and tokens keep
working, /readyz names Redis; all of it recovers by itself once Redis is back."""

from __future__ import annotations

from urllib.parse import urlsplit

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
    person.csrf_token = person.page.forms["step"]["fields"]["csrf_token"]
    return person


def _press(person: Visitor, state: str) -> requests.Response:
    """The person presses the step's button (again: the page is loaded anew first)."""
    if person.state != state:
        person.go("GET", person.step_url)
    assert person.state == state, (person.response.status_code, person.alert)
    if state == "password":
        return person.submit(password=PASSWORD)
    return person.submit(email_code=person.email_code)


def _script_calls(person: Visitor) -> dict[str, requests.Response]:
    """What the pages' scripts post from this person's browser: the live password checks
    (static/password.js) and the passkey options (static/passkeys.js). The rate limit is counted
    before the view looks at the flow, so one flow's id serves each page's address."""
    flow_id = urlsplit(person.step_url).path.rstrip("/").rsplit("/", 1)[1]
    token = person.csrf_token
    paths = {
        "login password check": f"/login/{flow_id}/password-check",
        "signup password check": f"/signup/flow/{flow_id}/password-check",
        "invitation password check": f"/invitation/flow/{flow_id}/password-check",
        "account password check": "/account/password-check",
        "connector password check": f"/connector-password/{flow_id}/password-check",
        "login passkey options": f"/login/{flow_id}/passkey-options",
        "security passkey options": "/account/security/passkeys/options",
    }
    calls = {name: person.http.post(person.base + path, data={"password": "x", "csrf_token": token}, timeout=15,
                                    headers={"X-CSRFToken": token})  # requests' own Accept: */*
             for name, path in paths.items()}
    calls["passkey options, as passkeys.js asks"] = person.http.post(
        person.base + paths["login passkey options"], data={"csrf_token": token}, timeout=15,
        headers={"X-CSRFToken": token, "Accept": "application/json"})
    return calls


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
    for name, response in _script_calls(steps["password"]).items():
        assert response.status_code == 503, (name, response.status_code, response.text[:500])
        assert response.headers["Content-Type"].startswith("application/json"), (name, response.text[:500])
        assert response.json()["error"] == "temporarily_unavailable", name
        assert "temporarily unavailable" in response.json()["error_description"].lower(), name
        assert response.headers["Retry-After"] == "5", name
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
    # The scripts' calls reach their views again, which judge the flow (here: no such page, or not this step).
    back = {name: response.status_code for name, response in _script_calls(steps["password"]).items()}
    assert back == {
        "login password check": 404, "signup password check": 404, "invitation password check": 404,
        "account password check": 401, "connector password check": 404, "login passkey options": 409,
        "security passkey options": 401, "passkey options, as passkeys.js asks": 409}, back
    # The steps refused while Redis was away go on where they were.
    assert _press(steps["password"], "password").status_code == 200
    assert steps["password"].state == "verify_email", steps["password"].alert
    assert _press(steps["email_code"], "email_code").status_code == 200
    assert steps["email_code"].state == "totp_enroll", steps["email_code"].alert
