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
    """The product's commands and options only: Flask's own options (--app, --debug,
    --env-file: the app is always idp's, configured by IDP_* variables) and the commands
    other packages register for `flask` (Flask-Limiter's) are left out. Lists and finds
    commands without loading the app, so `idp --help` works before the settings are
    complete (a command then says what is missing)."""

    FLASK_OPTIONS = {"env_file", "app", "debug"}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.params = [p for p in self.params if p.name not in self.FLASK_OPTIONS]
        self._loaded_plugin_commands = True  # never the `flask.commands` entry points

    def parse_args(self, ctx, args):
        return click.Group.parse_args(self, ctx, args)

    def list_commands(self, ctx):
        return sorted(click.Group.list_commands(self, ctx))

    def get_command(self, ctx, name):
        return click.Group.get_command(self, ctx, name)


@click.group(cls=IdpGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def cli():
    """The identity provider of the accounting suite.

    Settings come from IDP_* environment variables (see the README)."""


COMMANDS = (*serve.COMMANDS, *clients.COMMANDS, *people.COMMANDS, *support.COMMANDS, *operations.COMMANDS)
for _command in (*COMMANDS, operations.db_group()):
    cli.add_command(_command)


def main() -> None:
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        cli.main(prog_name="idp")
    except ConfigError as exc:
        click.echo(f"idp: configuration error: {exc}", err=True)
        sys.exit(2)
    except (OperationalError, ProgrammingError) as exc:
        # Most often a database that was never migrated, or another one than meant.
        first = str(exc.orig or exc).strip().splitlines()[0]
        click.echo(f"idp: the database cannot be used ({first}); run `idp db upgrade` first, and check "
                   "IDP_DATABASE_URL (the demo data of `make run`: IDP_ENV=development, in the repository's folder)",
                   err=True)
        sys.exit(1)
