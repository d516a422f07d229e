"""IDP_LOG_FORMAT=json and X-Request-Id, as an operator reads the log."""

from __future__ import annotations

import json

import pytest

from ..helpers import cli_runner, token_request


def machine_client(app) -> dict:
    # In JSON mode the command's log lines go to stderr; its answer is on stdout.
    result = cli_runner(app).invoke(
        args=["clients", "create", "--name", "Batch", "--grant-type", "client_credentials", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json_lines(result.stderr), "the command's audit event is logged"
    return json.loads(result.stdout)


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def request_line(lines: list[dict], request_id: str) -> dict:
    found = [entry for entry in lines if entry.get("logger") == "idp.request" and entry.get("request_id") == request_id]
    assert len(found) == 1, lines
    return found[0]


@pytest.mark.config(LOG_FORMAT="json")
def test_one_json_line_per_request_without_the_query(client, portal, capsys):
    capsys.readouterr()
    response = client.get(f"/authorize?client_id={portal['client_id']}&response_type=code&state=secret-state")
    response.get_data()
    rid = response.headers["X-Request-Id"]
    line = request_line(json_lines(capsys.readouterr().err), rid)
    assert line["method"] == "GET"
    assert line["path"] == "/authorize"
    assert line["status"] == response.status_code
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert line["client_id"] == portal["client_id"]
    assert line["remote_addr"] == "127.0.0.1"
    assert "secret-state" not in json.dumps(line)


@pytest.mark.config(LOG_FORMAT="json")
def test_the_token_endpoint_logs_the_client_of_basic_and_form_auth(app, client, capsys):
    machine = machine_client(app)
    capsys.readouterr()
    for auth in ("basic", "post"):
        response = token_request(client, machine, {"grant_type": "client_credentials"}, auth=auth)
        assert response.status_code == 200 and response.get_json()["access_token"]
        line = request_line(json_lines(capsys.readouterr().err), response.headers["X-Request-Id"])
        assert line["client_id"] == machine["client_id"] and line["status"] == 200
        assert machine["client_secret"] not in json.dumps(line)


@pytest.mark.config(LOG_FORMAT="json")
def test_security_events_are_logged_with_the_request_id(browser, portal, person, capsys):
    browser.authorize(portal["client_id"])
    browser.submit(email=person["email"])
    capsys.readouterr()
    response = browser.submit(password="wrong password 123")
    rid = response.headers["X-Request-Id"]
    lines = json_lines(capsys.readouterr().err)
    audit = [entry for entry in lines if entry.get("logger") == "idp.audit" and entry.get("action") == "login.password"]
    assert len(audit) == 1, lines
    event = audit[0]
    assert event["request_id"] == rid
    assert event["outcome"] == "failure" and event["subject"] == person["email"] and event["ip"] == "127.0.0.1"
    assert event["actor"]
    assert all("wrong password 123" not in json.dumps(entry) for entry in lines)
    request_line(lines, rid)


def test_text_logs_stay_text(client, capsys):
    capsys.readouterr()
    response = client.get("/healthz")
    response.get_data()
    err = capsys.readouterr().err
    assert not json_lines(err)


def test_a_request_id_is_made_and_sent_back(client):
    first = client.get("/healthz", headers={"X-Request-Id": "from-the-outside-1234"})
    second = client.get("/healthz")
    ids = {first.headers["X-Request-Id"], second.headers["X-Request-Id"]}
    # Without a trusted proxy the offered id is not taken.
    assert "from-the-outside-1234" not in ids and len(ids) == 2 and all(len(i) >= 16 for i in ids)
    assert client.get("/no-such-page").headers["X-Request-Id"]


@pytest.mark.config(TRUSTED_PROXIES=1, LOG_FORMAT="json")
def test_a_trusted_proxys_request_id_is_kept_when_it_is_sane(client, capsys):
    kept = client.get("/healthz", headers={"X-Request-Id": "lb-4f2a:0001"})
    kept.get_data()
    assert kept.headers["X-Request-Id"] == "lb-4f2a:0001"
    assert request_line(json_lines(capsys.readouterr().err), "lb-4f2a:0001")["path"] == "/healthz"
    for insane in ("x" * 200, "a b", "<script>", "é-accent", ""):
        response = client.get("/healthz", headers={"X-Request-Id": insane})
        assert response.headers["X-Request-Id"] != insane
        assert len(response.headers["X-Request-Id"]) == 32
