"""The demo bank connector: what a bank's integration does with a connector user's credentials.

It reads the provider's discovery document, exchanges the connector username and password for
an access token with the password grant (client authentication ``client_secret_basic``), asks
the introspection endpoint what that token stands for and prints a short report: the connector
user (``sub``), the administration, the scope, the expiry and whether the token is active.

Settings come from the environment (see :func:`load_settings`). Exit status: 0 when the token
is active, 1 when the provider refused or could not be reached, 2 for missing or malformed
settings. The password, the client secret and the whole access token are never printed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TextIO
from urllib.parse import quote, urlsplit

import requests

PROG = "bank_connector"
DEFAULT_ISSUER = "http://127.0.0.1:5000"
HTTP_TIMEOUT = 10  # seconds, for every call to the provider
TOKEN_PREFIX_LENGTH = 8
REQUIRED = ("BANK_CLIENT_ID", "BANK_CLIENT_SECRET", "BANK_USERNAME", "BANK_PASSWORD")
REGISTER_HINT = "idp clients create --name Bank --grant-type password --json"


class ConfigError(RuntimeError):
    """A setting is missing or malformed (exit status 2)."""


class ConnectorError(RuntimeError):
    """The provider refused, could not be reached or answered something unusable (exit status 1)."""


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    username: str
    password: str = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def metadata_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password, self.client_secret)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: str, what: str, error: type[Exception]) -> str:
    """An absolute http(s) URL; plain http only to this machine, since the password travels in it."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise error(f"{what} must be an absolute http(s) URL, got {value!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise error(f"{what} must use https (plain http is accepted for this machine only), got {value!r}")
    return value


def bare_username(value: str) -> tuple[str, str | None]:
    """The username the token endpoint wants, and the suffix that was removed (if any).

    The reset portal accepts the username with the connector domain suffix
    (``U4BBGA0008@u4bsw.nl``); the password grant takes it without.
    """
    username, at, suffix = value.strip().partition("@")
    return username.strip(), ("@" + suffix if at else None)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the connector's settings from the environment (or the given mapping)."""
    env = os.environ if environ is None else environ
    missing = [name for name in REQUIRED if not (env.get(name) or "").strip()]
    if missing:
        raise ConfigError(
            f"missing required setting {', '.join(missing)}; register the bank with `{REGISTER_HINT}` "
            "and request the connector user's password on the account page"
        )

    issuer = (env.get("BANK_ISSUER") or DEFAULT_ISSUER).strip().rstrip("/")
    _check_url(issuer, "BANK_ISSUER", ConfigError)
    if urlsplit(issuer).query or urlsplit(issuer).fragment:
        raise ConfigError(f"BANK_ISSUER must be a base URL such as {DEFAULT_ISSUER}, got {issuer!r}")

    notes = []
    username, suffix = bare_username(env["BANK_USERNAME"])
    if not username:
        raise ConfigError("BANK_USERNAME must be the connector username, such as U4BBGA0008")
    if suffix is not None:
        notes.append(
            f"using username {username!r}: the suffix {suffix!r} belongs to the reset portal only, "
            "the token endpoint wants the bare username"
        )

    return Settings(
        issuer=issuer,
        client_id=env["BANK_CLIENT_ID"].strip(),
        client_secret=env["BANK_CLIENT_SECRET"].strip(),
        username=username,
        # A password may begin or end with a space; take it exactly as given.
        password=env["BANK_PASSWORD"],
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- the report


def format_timestamp(value) -> str:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)


def _iso(value) -> str | None:
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def token_prefix(token: str) -> str:
    """The first characters of a token, never the whole of a short one."""
    return token[: min(TOKEN_PREFIX_LENGTH, len(token) // 2)]


@dataclass(frozen=True)
class Report:
    sub: str | None
    administration: str | None
    scope: str | None
    exp: int | None
    active: bool
    access_token: str = field(repr=False)

    def as_dict(self, show_token: bool = False) -> dict:
        data = {
            "sub": self.sub,
            "administration": self.administration,
            "scope": self.scope,
            "exp": self.exp,
            "expires_at": _iso(self.exp) if self.exp is not None else None,
            "active": self.active,
        }
        if show_token:
            data["access_token_prefix"] = token_prefix(self.access_token)
        return data

    def as_text(self, show_token: bool = False) -> str:
        def shown(value) -> str:
            if value is None:
                return "(not given)"
            return str(value) if value != "" else "(none)"

        rows = [
            ("connector user", shown(self.sub)),
            ("administration", shown(self.administration)),
            ("scope", shown(self.scope)),
            ("expires", format_timestamp(self.exp) if self.exp is not None else "(not given)"),
            ("active", "yes" if self.active else "no"),
        ]
        if show_token:
            rows.append(("access token", token_prefix(self.access_token) + "… (first characters only)"))
        return "\n".join(f"{label:<16}{value}" for label, value in rows)


# --------------------------------------------------------------------------- talking to the provider


def _describe(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {HTTP_TIMEOUT} seconds"
    return exc.__class__.__name__


def _json_object(response: requests.Response, what: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ConnectorError(f"the {what} answered HTTP {response.status_code} without a JSON object")
    return body


def _one_line(text, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Connector:
    """One run: discovery, the password grant, introspection."""

    def __init__(self, settings: Settings, session: requests.Session | None = None):
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "idp-demo-bank-connector"

    @property
    def _basic_auth(self) -> tuple[str, str]:
        # RFC 6749 section 2.3.1: both parts are form-encoded before Basic encoding.
        return quote(self.settings.client_id, safe=""), quote(self.settings.client_secret, safe="")

    def discover(self) -> dict:
        url = self.settings.metadata_url
        try:
            response = self.session.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise ConnectorError(f"cannot reach the provider at {url} ({_describe(exc)})") from exc
        if response.status_code != 200:
            raise ConnectorError(f"the discovery document at {url} answered HTTP {response.status_code}")
        metadata = _json_object(response, f"discovery document at {url}")
        issuer = str(metadata.get("issuer", "")).rstrip("/")
        if issuer != self.settings.issuer:
            raise ConnectorError(
                f"the discovery document names issuer {metadata.get('issuer')!r}, expected {self.settings.issuer!r}"
            )
        for name in ("token_endpoint", "introspection_endpoint"):
            value = metadata.get(name)
            if not isinstance(value, str) or not value:
                raise ConnectorError(f"the discovery document at {url} names no {name}")
            _check_url(value, f"the discovery document's {name}", ConnectorError)
        return metadata

    def _post(self, url: str, data: dict, what: str) -> requests.Response:
        try:
            # No redirects: a redirected POST would carry the password somewhere else.
            response = self.session.post(
                url, data=data, auth=self._basic_auth, timeout=HTTP_TIMEOUT,
                headers={"Accept": "application/json"}, allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ConnectorError(f"cannot reach the {what} at {url} ({_describe(exc)})") from exc
        if 300 <= response.status_code < 400:
            raise ConnectorError(f"the {what} at {url} answered with a redirect (HTTP {response.status_code})")
        return response

    def obtain_token(self, metadata: dict) -> dict:
        response = self._post(
            metadata["token_endpoint"],
            {"grant_type": "password", "username": self.settings.username, "password": self.settings.password},
            "token endpoint",
        )
        body = _json_object(response, "token endpoint")
        if response.status_code != 200 or "error" in body:
            raise ConnectorError(self._token_error(response.status_code, body))
        if not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise ConnectorError("the token endpoint answered without an access token")
        return body

    def _token_error(self, status: int, body: dict) -> str:
        error = _one_line(body.get("error") or f"HTTP {status}", 60)
        description = _one_line(body.get("error_description") or "")
        detail = f" ({description})" if description else ""
        client, user = self.settings.client_id, self.settings.username
        if error == "invalid_grant":
            return (f"the provider refused the password for connector user {user!r} (invalid_grant): "
                    f"the password is wrong or the connector user is locked{detail}")
        if error == "unauthorized_client":
            return (f"client {client!r} is not registered for the password grant (unauthorized_client); "
                    f"register one with `{REGISTER_HINT}`{detail}")
        if error == "invalid_client":
            return (f"the provider refused the client credentials (invalid_client): "
                    f"check BANK_CLIENT_ID and BANK_CLIENT_SECRET{detail}")
        if error == "unsupported_grant_type":
            return f"the provider does not accept the password grant (unsupported_grant_type){detail}"
        if status == 429:
            return f"the token endpoint says too many requests (HTTP 429); try again later{detail}"
        return f"the token endpoint refused the request: {error}{detail}"

    def introspect(self, metadata: dict, access_token: str) -> dict:
        response = self._post(
            metadata["introspection_endpoint"],
            {"token": access_token, "token_type_hint": "access_token"},
            "introspection endpoint",
        )
        body = _json_object(response, "introspection endpoint")
        if response.status_code != 200 or "error" in body:
            error = _one_line(body.get("error") or f"HTTP {response.status_code}", 60)
            raise ConnectorError(f"the introspection endpoint refused the request: {error}")
        if not isinstance(body.get("active"), bool):
            raise ConnectorError("the introspection endpoint answered without an `active` member")
        return body

    def run(self) -> Report:
        metadata = self.discover()
        token = self.obtain_token(metadata)
        access_token = token["access_token"]
        info = self.introspect(metadata, access_token)

        exp = info.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            expires_in = token.get("expires_in")
            exp = int(time.time()) + expires_in if isinstance(expires_in, int) and info["active"] else None
        administration = info.get("administration", token.get("administration"))
        return Report(
            sub=info.get("sub"),
            administration=None if administration is None else str(administration),
            scope=info.get("scope", token.get("scope")),
            exp=exp,
            active=info["active"],
            access_token=access_token,
        )


# --------------------------------------------------------------------------- command line


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[hidden]")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m clients.{PROG}",
        description="Sign in as a connector user with the password grant and report the token.",
        epilog="Settings: BANK_ISSUER, BANK_CLIENT_ID, BANK_CLIENT_SECRET, BANK_USERNAME, BANK_PASSWORD.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--show-token", action="store_true", help="add the access token's first 8 characters")
    return parser


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    session: requests.Session | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    err = stderr or sys.stderr

    def say(message: str) -> None:
        print(f"{PROG}: {message}", file=err)

    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        say(str(exc))
        return 2
    for note in settings.notes:
        say(f"note: {note}")

    secrets: list[str] = list(settings.secrets)
    try:
        report = Connector(settings, session).run()
    except ConnectorError as exc:
        say(_redact(str(exc), secrets))
        return 1
    secrets.append(report.access_token)

    text = json.dumps(report.as_dict(args.show_token), indent=2) if args.json else report.as_text(args.show_token)
    print(_redact(text, secrets), file=out)
    # The provider keeps connector usernames in capitals; only a different user is worth a note.
    if report.sub is not None and str(report.sub).upper() != settings.username.upper():
        say(_redact(f"note: the provider names the connector user {report.sub!r}, "
                    f"the request was for {settings.username!r}", secrets))
    if not report.active:
        say("the provider reports the new access token as inactive")
        return 1
    return 0
