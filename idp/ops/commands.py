"""`idp db prune`: delete what has expired, once or every N seconds (as `idp serve` runs it)."""

from __future__ import annotations

import json
import signal
import threading

import click
from flask.cli import with_appcontext


def _print(counts: dict | None, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(counts if counts is not None else {"skipped": True}, sort_keys=True))
    elif counts is None:
        click.echo("another instance is pruning: skipped")
    else:
        for name, count in counts.items():
            click.echo(f"{name}: {count}")


@click.command("prune")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
@click.option("--every", type=click.IntRange(min=1), help="Prune every N seconds until stopped.")
@with_appcontext
def prune_command(as_json, every):
    """Delete expired flows, codes, sessions, tokens and old delivered mail; print how many."""
    from ..services import prune

    if every is None:
        _print(prune.prune_once_everywhere(), as_json)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    prune.prune_forever(every, stop)
