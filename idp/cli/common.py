"""What the commands share: failing with one line, printing text or JSON, who acts, URL checks."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
from typing import NoReturn
from urllib.parse import urlsplit

import click


def fail(message: str) -> NoReturn:
    """End the command with ``message`` on stderr and a non-zero status; ``x or fail(...)`` reads as
    "x, which must exist"."""
    raise click.ClickException(message)


def emit(data, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=None, sort_keys=True))
    else:
        click.echo(text if text is not None else json.dumps(data, indent=2, sort_keys=True))


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return f"cli:{user}"


def check_uri(value: str, option: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        fail(f"{option} must be an absolute http(s) URL without a fragment: {value!r}")
    return value


@contextlib.contextmanager
def committed():
    """Run a service call: a refused step fails the command with its message, a
    successful one is committed."""
    from ..errors import DomainError
    from ..extensions import db

    try:
        yield
    except DomainError as exc:
        fail(english(exc.plain))
    db.session.commit()


def english(text) -> str:
    """A text of the pages (a lazy text, or a function making one) in English, the language
    of the command line."""
    from flask_babel import force_locale

    with force_locale("en"):
        return text() if callable(text) else str(text)
