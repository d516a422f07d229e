"""The `idp` command: one module per area (serve, clients, people, support, operations)."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from ..config import ConfigError
from . import clients, operations, people, serve, support


def _create_app(*_args, **_kwargs):
    from .. import create_app

    return create_app()


class IdpGroup(FlaskGroup):
    """Lists and finds commands without loading the app, so `idp --help` works
    before the settings are complete (a command then says what is missing)."""

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return sorted(click.Group.list_commands(self, ctx))

    def get_command(self, ctx, name):
        self._load_plugin_commands()
        return click.Group.get_command(self, ctx, name)


@click.group(cls=IdpGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def cli():
    """The identity provider of the accounting suite.

    Settings come from IDP_* environment variables (see the README)."""


COMMANDS = (*serve.COMMANDS, *clients.COMMANDS, *people.COMMANDS, *support.COMMANDS, *operations.COMMANDS)
for _command in (*COMMANDS, operations.db_group()):
    cli.add_command(_command)


def main() -> None:
    try:
        cli.main(prog_name="idp")
    except ConfigError as exc:
        click.echo(f"idp: configuration error: {exc}", err=True)
        sys.exit(2)


def register(app) -> None:
    """Commands that need the app are added to its CLI too (tests use app.test_cli_runner)."""
    for command in COMMANDS:
        app.cli.add_command(command)
