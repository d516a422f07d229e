"""`idp keys`, `mail`, `audit` and `db`: what operators run."""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from .common import cli_actor, emit


@click.group("keys")
def keys_group():
    """Signing keys."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate():
    """Publish a new signing key; old keys stay published until their tokens expire."""
    from ..services import audit, keys
    from ..extensions import db

    row = keys.rotate()
    audit.record("keys.rotated", actor=cli_actor(), subject=row.kid)
    db.session.commit()
    click.echo(f"new signing key: {row.kid}")


@keys_group.command("reencrypt")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def keys_reencrypt(batch_size, as_json):
    """Move every encrypted value to the current IDP_SECRET_KEY (after a secret rotation).

    Safe to run again and from several instances; values already under the current
    secret are left alone. Exits 1 when a value no configured secret opens was found."""
    from ..extensions import db
    from ..services import audit, reencrypt

    counts = reencrypt.reencrypt_all(batch_size)
    moved = sum(c["reencrypted"] for c in counts.values())
    undecryptable = sum(c["undecryptable"] for c in counts.values())
    audit.record("keys.reencrypted", actor=cli_actor(), reencrypted=moved, undecryptable=undecryptable)
    db.session.commit()
    emit(counts, as_json, "\n".join(
        f"{kind}: {c['reencrypted']} re-encrypted, {c['current']} already current, {c['undecryptable']} undecryptable"
        for kind, c in counts.items()))
    if undecryptable:
        raise SystemExit(1)


@click.group("mail")
def mail_group():
    """Queued mail."""


@mail_group.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until stopped.")
@with_appcontext
def mail_deliver(loop):
    """Send queued mail over SMTP and back-channel logouts to clients (once, or in a loop)."""
    import threading

    from ..services import mailer

    if not current_app.config["MAIL_SERVER"]:
        if not loop:
            click.echo("no IDP_MAIL_SERVER configured: mail stays queued", err=True)
        else:
            click.echo("no IDP_MAIL_SERVER configured: mail stays queued (dev mailbox in development)", err=True)
    if loop:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        mailer.deliver_forever(stop)
        return
    from ..services import backchannel

    if current_app.config["MAIL_SERVER"]:
        sent, failed = mailer.deliver_due()
        click.echo(f"sent {sent}, failed {failed}")
    # Back-channel logouts need no relay: they leave even while mail stays queued.
    delivered, not_delivered = backchannel.deliver_due()
    if delivered or not_delivered:
        click.echo(f"back-channel logouts: delivered {delivered}, failed {not_delivered}")


@click.group("audit")
def audit_group():
    """The audit trail."""


@audit_group.command("list")
@click.option("--subject", help="Only events about this e-mail address.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def audit_list(subject, limit, as_json):
    """Audit events, newest first."""
    from ..services import audit

    events = [audit.as_dict(e) for e in audit.recent(subject, limit)]
    if as_json:
        emit(events, True)
        return
    for e in events:
        click.echo(f"{e['at']}  {e['action']:<28} {e['outcome']:<8} {e['subject'] or '-':<32} {e['actor']}  {e['ip'] or ''}")


class MigrationsGroup(click.Group):
    """`idp db`: Flask-Migrate's commands and `prune`. Flask-Migrate (and Alembic under it, some
    11 MiB) is imported only when one of its commands runs or is listed, never by `idp serve`."""

    @staticmethod
    def _migrations() -> click.Group:
        from flask_migrate.cli import db

        return db

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._migrations().list_commands(ctx)))

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self._migrations().get_command(ctx, name)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and name not in self.commands:  # one of Flask-Migrate's: it needs the extension
            _bind_migrations(ctx.ensure_object(ScriptInfo).load_app())
        return name, command, rest


def _bind_migrations(app) -> None:
    from flask_migrate import Migrate

    from .. import _resource_dir
    from ..extensions import db

    if "migrate" not in app.extensions:
        Migrate(app, db, directory=_resource_dir("migrations"))


def db_group():
    from ..ops.commands import prune_command

    @click.group("db", cls=MigrationsGroup)
    @click.option("-d", "--directory", default=None, help='Migration script directory (default is "migrations")')
    @click.option("-x", "--x-arg", multiple=True, help="Additional arguments consumed by custom env.py scripts")
    @with_appcontext
    def db(directory, x_arg):
        """Database migrations (`idp db upgrade` applies them)."""
        from flask import g

        g.directory = directory  # as Flask-Migrate's own group does: its commands read them
        g.x_arg = x_arg

    db.add_command(prune_command)  # idp db prune
    return db


COMMANDS = (keys_group, mail_group, audit_group)
