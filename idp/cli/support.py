"""`idp support`: what support staff do, one command per entry of services.support.ACTIONS."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..services.support import ACTIONS, Action
from .common import cli_actor, committed, fail

# The argument's name in the usage line, by the kind of subject.
METAVAR = {"account": "EMAIL", "connector": "USERNAME"}
MISSING = {"account": "no account with e-mail {given!r}", "connector": "no connector user {given!r}"}
# `idp support unlock NAME`: a NAME without "@" is a connector user's username.
FOR_CONNECTORS = {"unlock": "unlock-connector"}
# What each command prints when done; {given} is the argument as typed, {name} the
# subject's e-mail or (normalised) username.
DONE = {
    "unlock": "unlocked {given}",
    "release-reset-throttle": "released {name}",
    "reset-2fa": "two-step verification reset for {given}",
    "disable": "disabled {given}",
    "enable": "enabled {given}",
}


@click.group("support")
def support_group():
    """What support staff do: unlock, release, reset 2FA, disable, enable."""


def _find(action: Action, given: str, missing: str):
    from ..services import support

    subject = support.find_subject(action.subject, given)
    if subject is None:
        fail(missing)
    return subject


def _command(action: Action, connector_action: Action | None) -> click.Command:
    summary = action.summary
    if connector_action is not None:
        summary += " A connector username unlocks that connector user."

    @click.argument("given", metavar=METAVAR[action.subject])
    @click.option("--reason", required=action.reason_required, help="Why (kept in the audit trail).")
    @with_appcontext
    def command(given, reason):
        if connector_action is not None and "@" not in given:
            chosen, missing = connector_action, f"no account or connector user {given!r}"
        else:
            chosen, missing = action, MISSING[action.subject].format(given=given)
        subject = _find(chosen, given, missing)
        with committed():
            chosen.perform(subject, actor=cli_actor(), ip=None, reason=reason)
        click.echo(DONE[action.name].format(given=given, name=getattr(subject, "username", given)))

    return click.command(action.name, help=summary)(command)


for _action in ACTIONS.values():
    if _action.name in DONE:
        _connector = ACTIONS[FOR_CONNECTORS[_action.name]] if _action.name in FOR_CONNECTORS else None
        support_group.add_command(_command(_action, _connector))

COMMANDS = (support_group,)
