"""The bank connector against a fake provider.

The fake provider is a small Flask app; every HTTP call the connector makes through
``requests`` (discovery, token, introspection) is handed to it in-process by a transport
adapter, so the wire format is exercised (Basic client authentication, the password grant's
form, the introspection request) without sockets. Its endpoints live at paths the connector
could not guess, so the tests also show that discovery is what finds them.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
from base64 import b64decode
from pathlib import Path
from urllib.parse import unquote

import pytest

from clients.testing import route_requests
from flask import Flask, jsonify, request

from clients.bank_connector import ConfigError, Settings, load_settings, main

ISSUER = "https://op.test"
CLIENT_ID = "bank-client"
CLIENT_SECRET = "bank-secret-value-0123456789"
USERNAME = "U4BBGA0008"
PASSWORD = "Correct-Horse-Battery-9!"
ADMINISTRATION = "adm-7f3c"
REPO_ROOT = Path(__file__).resolve().parents[3]
TOKEN_PATH = "/oauth2/v1/token"
INTROSPECTION_PATH = "/oauth2/v1/introspect"


class FakeProvider:
    """Just enough of the provider for a connector user: discovery, password grant, introspection."""

    def __init__(self):
        self.connector_users = {USERNAME: {"password": PASSWORD, "administration": ADMINISTRATION, "locked": False}}
        self.password_clients = {CLIENT_ID: CLIENT_SECRET}  # clients registered for the password grant
        self.other_clients = {"portal-client": "portal-secret"}
        self.access_tokens: dict[str, dict] = {}
        self.requests: list[dict] = []
        # knobs for failure cases
        self.metadata_issuer = ISSUER
        self.omit_from_discovery: set[str] = set()
        self.echo_password_in_error = False
        self.introspection_inactive = False
        self.app = self._build_app()

    def _client(self):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        client_id, _, secret = b64decode(header[6:]).decode().partition(":")
        client_id, secret = unquote(client_id), unquote(secret)  # RFC 6749 section 2.3.1
        known = {**self.password_clients, **self.other_clients}
        if client_id in known and secrets.compare_digest(known[client_id], secret):
            return client_id
        return None

    def _build_app(self) -> Flask:
        app = Flask("fake_provider")

        @app.before_request
        def record():
            self.requests.append(
                {"method": request.method, "path": request.path, "form": request.form.to_dict(),
                 "authorization": request.headers.get("Authorization")}
            )

        def error(code: str, status: int = 400, description: str = ""):
            return jsonify(error=code, error_description=description), status

        @app.get("/.well-known/openid-configuration")
        def discovery():
            doc = {
                "issuer": self.metadata_issuer,
                "authorization_endpoint": ISSUER + "/authorize",
                "token_endpoint": ISSUER + TOKEN_PATH,
                "introspection_endpoint": ISSUER + INTROSPECTION_PATH,
                "jwks_uri": ISSUER + "/jwks.json",
                "grant_types_supported": ["authorization_code", "refresh_token", "password"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            }
            return jsonify({k: v for k, v in doc.items() if k not in self.omit_from_discovery})

        @app.post(TOKEN_PATH)
        def token():
            client_id = self._client()
            if client_id is None:
                return error("invalid_client", 401, "client authentication failed")
            form = request.form
            if form.get("grant_type") != "password":
                return error("unsupported_grant_type")
            if client_id not in self.password_clients:
                return error("unauthorized_client", description="this client may not use the password grant")
            username = form.get("username", "").upper()  # like the provider: usernames are kept in capitals
            user = self.connector_users.get(username)
            if user is None or user["locked"] or not secrets.compare_digest(user["password"], form.get("password", "")):
                description = "invalid username or password"
                if self.echo_password_in_error:
                    description += f": {form.get('password')}"
                return error("invalid_grant", description=description)
            access_token = secrets.token_urlsafe(32)
            self.access_tokens[access_token] = {
                "sub": username, "administration": user["administration"],
                "client_id": client_id, "exp": int(time.time()) + 3600,
            }
            response = jsonify(access_token=access_token, token_type="Bearer", expires_in=3600,
                               refresh_token=secrets.token_urlsafe(32))
            response.headers["Cache-Control"] = "no-store"
            return response

        @app.post(INTROSPECTION_PATH)
        def introspect():
            client_id = self._client()
            if client_id is None:
                return error("invalid_client", 401)
            data = self.access_tokens.get(request.form.get("token", ""))
            if data is None or self.introspection_inactive:
                return jsonify(active=False)
            return jsonify(active=True, token_type="Bearer", scope="", iss=ISSUER, iat=data["exp"] - 3600, **data)

        return app


@pytest.fixture
def provider(monkeypatch):
    fake = FakeProvider()
    route_requests(monkeypatch, fake.app, ISSUER)
    return fake


def bank_env(**overrides) -> dict:
    env = {
        "BANK_ISSUER": ISSUER,
        "BANK_CLIENT_ID": CLIENT_ID,
        "BANK_CLIENT_SECRET": CLIENT_SECRET,
        "BANK_USERNAME": USERNAME,
        "BANK_PASSWORD": PASSWORD,
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run(*argv: str, **env_overrides) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), environ=bank_env(**env_overrides), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def token_requests(provider) -> list[dict]:
    return [r for r in provider.requests if r["path"] == TOKEN_PATH]


def issued_tokens(provider) -> list[str]:
    return list(provider.access_tokens)


def assert_no_secret(provider, *texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
        assert CLIENT_SECRET not in text
        for token in issued_tokens(provider):
            assert token not in text


# --------------------------------------------------------------------------- success


def test_report_names_user_administration_scope_expiry_and_active(provider):
    status, out, err = run()
    assert status == 0, err
    assert err == ""
    assert re.search(rf"^connector user\s+{USERNAME}$", out, re.M)
    assert re.search(rf"^administration\s+{ADMINISTRATION}$", out, re.M)
    assert re.search(r"^scope\s+\(none\)$", out, re.M)
    assert re.search(r"^expires\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", out, re.M)
    assert re.search(r"^active\s+yes$", out, re.M)
    assert "access token" not in out
    assert_no_secret(provider, out, err)


def test_expiry_is_the_introspected_exp_in_utc(provider):
    status, out, _ = run()
    assert status == 0
    exp = next(iter(provider.access_tokens.values()))["exp"]
    expected = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(exp))
    assert re.search(rf"^expires\s+{re.escape(expected)}$", out, re.M)


def test_endpoints_come_from_discovery_and_the_wire_format(provider):
    assert run()[0] == 0
    paths = [(r["method"], r["path"]) for r in provider.requests]
    assert paths == [
        ("GET", "/.well-known/openid-configuration"),
        ("POST", TOKEN_PATH),
        ("POST", INTROSPECTION_PATH),
    ]
    grant, introspection = provider.requests[1], provider.requests[2]
    assert grant["form"] == {"grant_type": "password", "username": USERNAME, "password": PASSWORD}
    assert grant["authorization"].startswith("Basic ")  # client_secret_basic, no secret in the form
    assert "client_secret" not in grant["form"] and "client_id" not in grant["form"]
    assert introspection["authorization"] == grant["authorization"]
    assert introspection["form"]["token"] in provider.access_tokens
    assert introspection["form"]["token_type_hint"] == "access_token"


def test_json_report(provider):
    status, out, err = run("--json")
    assert status == 0, err
    report = json.loads(out)
    exp = next(iter(provider.access_tokens.values()))["exp"]
    assert report == {
        "sub": USERNAME,
        "administration": ADMINISTRATION,
        "scope": "",
        "exp": exp,
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)),
        "active": True,
    }
    assert_no_secret(provider, out, err)


def test_show_token_prints_only_the_first_8_characters(provider):
    status, out, err = run("--show-token")
    assert status == 0, err
    token = issued_tokens(provider)[0]
    assert re.search(rf"^access token\s+{re.escape(token[:8])}…", out, re.M)
    assert token[:9] not in out
    assert_no_secret(provider, out, err)

    status, out, err = run("--json", "--show-token")
    assert status == 0, err
    token = issued_tokens(provider)[1]
    assert json.loads(out)["access_token_prefix"] == token[:8]
    assert_no_secret(provider, out, err)


def test_client_credentials_are_form_encoded_for_basic_auth(provider):
    odd_secret = "sec:ret%with/odd+chars"
    provider.password_clients["bank:2"] = odd_secret
    status, out, err = run(BANK_CLIENT_ID="bank:2", BANK_CLIENT_SECRET=odd_secret)
    assert status == 0, err
    assert odd_secret not in out + err


# --------------------------------------------------------------------------- the username


def test_domain_suffix_is_stripped_with_a_note(provider):
    status, out, err = run(BANK_USERNAME=f"{USERNAME}@u4bsw.nl")
    assert status == 0, err
    assert token_requests(provider)[0]["form"]["username"] == USERNAME
    assert re.search(rf"^connector user\s+{USERNAME}$", out, re.M)
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "note" in lines[0] and repr(USERNAME) in lines[0] and "@u4bsw.nl" in lines[0]


def test_bare_username_gives_no_note(provider):
    status, _, err = run(BANK_USERNAME=f"  {USERNAME}  ")
    assert status == 0
    assert err == ""
    assert token_requests(provider)[0]["form"]["username"] == USERNAME


def test_username_in_small_letters_is_the_same_user(provider):
    status, out, err = run(BANK_USERNAME=USERNAME.lower())
    assert status == 0
    assert err == ""
    assert re.search(rf"^connector user\s+{USERNAME}$", out, re.M)


def test_token_for_another_user_gets_a_note(provider):
    original = provider.app.view_functions["introspect"]

    def other_subject():
        response = original()
        body = response.get_json()
        if body.get("active"):
            body["sub"] = "U9OTHER001"
        return jsonify(body)

    provider.app.view_functions["introspect"] = other_subject
    status, out, err = run()
    assert status == 0
    assert re.search(r"^connector user\s+U9OTHER001$", out, re.M)
    assert "note" in err and "'U9OTHER001'" in err and repr(USERNAME) in err


def test_username_that_is_only_a_suffix_is_a_setting_error(provider):
    status, out, err = run(BANK_USERNAME="@u4bsw.nl")
    assert status == 2
    assert "BANK_USERNAME" in err and out == ""
    assert provider.requests == []


# --------------------------------------------------------------------------- refusals


def test_wrong_password_is_invalid_grant(provider):
    status, out, err = run(BANK_PASSWORD="not-the-password")
    assert status == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "invalid_grant" in lines[0] and "password is wrong" in lines[0] and "locked" in lines[0]
    assert "not-the-password" not in err
    assert_no_secret(provider, out, err)


def test_locked_connector_user_is_invalid_grant(provider):
    provider.connector_users[USERNAME]["locked"] = True
    status, out, err = run()
    assert status == 1
    assert len(err.strip().splitlines()) == 1 and "invalid_grant" in err
    assert provider.access_tokens == {}
    assert_no_secret(provider, out, err)


def test_client_without_the_password_grant_is_unauthorized_client(provider):
    status, out, err = run(BANK_CLIENT_ID="portal-client", BANK_CLIENT_SECRET="portal-secret")
    assert status == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "unauthorized_client" in lines[0] and "'portal-client'" in lines[0]
    assert "--grant-type password" in lines[0]
    assert "portal-secret" not in err and PASSWORD not in err


def test_wrong_client_secret_is_invalid_client(provider):
    status, out, err = run(BANK_CLIENT_SECRET="wrong-secret-value")
    assert status == 1
    assert "invalid_client" in err and "BANK_CLIENT_SECRET" in err
    assert "wrong-secret-value" not in err + out


def test_password_echoed_by_the_provider_is_hidden(provider):
    provider.echo_password_in_error = True
    provider.connector_users[USERNAME]["locked"] = True
    status, out, err = run()
    assert status == 1
    assert "invalid_grant" in err and "[hidden]" in err
    assert_no_secret(provider, out, err)


def test_inactive_token_is_reported_and_fails(provider):
    provider.introspection_inactive = True
    status, out, err = run()
    assert status == 1
    assert re.search(r"^active\s+no$", out, re.M)
    assert "inactive" in err
    assert_no_secret(provider, out, err)


# --------------------------------------------------------------------------- discovery and network


def test_unreachable_provider_gives_one_line(provider):
    status, out, err = run(BANK_ISSUER="https://down.test")
    assert status == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "https://down.test/.well-known/openid-configuration" in lines[0]
    assert "ConnectionError" in lines[0]


def test_missing_introspection_endpoint_is_not_guessed(provider):
    provider.omit_from_discovery = {"introspection_endpoint"}
    status, _, err = run()
    assert status == 1
    assert "introspection_endpoint" in err
    assert [r["path"] for r in provider.requests] == ["/.well-known/openid-configuration"]


def test_missing_token_endpoint_is_not_guessed(provider):
    provider.omit_from_discovery = {"token_endpoint"}
    status, _, err = run()
    assert status == 1
    assert "token_endpoint" in err
    assert [r["path"] for r in provider.requests] == ["/.well-known/openid-configuration"]


def test_discovery_naming_another_issuer_is_refused(provider):
    provider.metadata_issuer = "https://evil.test"
    status, _, err = run()
    assert status == 1
    assert "evil.test" in err
    assert token_requests(provider) == []


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("missing", ["BANK_CLIENT_ID", "BANK_CLIENT_SECRET", "BANK_USERNAME", "BANK_PASSWORD"])
def test_missing_setting_exits_2(provider, missing):
    status, out, err = run(**{missing: None})
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0]
    assert provider.requests == []


def test_plain_http_issuer_only_for_this_machine(provider):
    status, _, err = run(BANK_ISSUER="http://idp.example.com")
    assert status == 2
    assert "BANK_ISSUER" in err and "https" in err
    assert load_settings(bank_env(BANK_ISSUER="http://localhost:5000/")).issuer == "http://localhost:5000"


def test_defaults_and_settings_repr_hide_secrets():
    env = bank_env()
    del env["BANK_ISSUER"]
    settings = load_settings(env)
    assert settings.issuer == "http://127.0.0.1:5000"
    assert settings.metadata_url == "http://127.0.0.1:5000/.well-known/openid-configuration"
    assert isinstance(settings, Settings)
    assert PASSWORD not in repr(settings) and CLIENT_SECRET not in repr(settings)
    with pytest.raises(ConfigError):
        load_settings({})


def test_module_entry_point_reports_missing_settings_in_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    result = subprocess.run(
        [sys.executable, "-m", "clients.bank_connector"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in ("BANK_CLIENT_ID", "BANK_CLIENT_SECRET", "BANK_USERNAME", "BANK_PASSWORD"):
        assert name in lines[0]
