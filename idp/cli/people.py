"""`idp users`, `staff`, `firms`, `invitations`, `access`, `connectors`, `accounts`: people,
firms and the administrations they join."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from .common import cli_actor, committed, emit, english, fail


@click.group("users")
def users():
    """People's accounts."""


@click.group("staff")
def staff():
    """Support staff."""


def _create_command(role: str, summary: str) -> click.Command:
    @click.option("--email", required=True)
    @click.option("--password", help="The password (others on this machine may see it in the process list: "
                                     "prefer the prompt or --password-file).")
    @click.option("--password-file", type=click.File("r"),
                  help="Read the password from the first line of this file ('-': standard input).")
    @click.option("--name", default="")
    @click.option("--json", "as_json", is_flag=True)
    @with_appcontext
    def create(email, password, password_file, name, as_json):
        _create_account(email, read_password(password, password_file), name, role, as_json)

    return click.command("create", help=summary + " The password must meet the password policy; without "
                                                  "--password or --password-file it is asked for (twice, hidden), "
                                                  "or read from standard input when that is not a terminal.")(create)


def at_terminal() -> bool:
    return sys.stdin.isatty()


def read_password(given: str | None, from_file) -> str:
    """The new password: --password, else the first line of --password-file, else standard
    input when it is not a terminal, else a hidden prompt (typed twice)."""
    if given is not None and from_file is not None:
        fail("give --password or --password-file, not both")
    if given is not None:
        return given
    if from_file is None and not at_terminal():
        from_file = sys.stdin
    if from_file is not None:
        return from_file.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt="Password again")


def _create_account(email, password, name, role, as_json):
    from ..errors import InvalidEmail
    from ..extensions import db
    from ..services import accounts, audit, password_policy

    if not password:
        fail("the password must not be empty")
    try:
        email = accounts.normalize_email(email)
    except InvalidEmail:
        fail(f"not a valid e-mail address: {email!r}")
    verdict = password_policy.check(password, None, email=email, name=name)
    if not verdict.ok:
        fail("the password does not meet the policy: " + english(lambda: " ".join(map(str, verdict.problems()))))
    try:
        account = accounts.create_account(email, password, name=name, role=role)
    except ValueError as exc:
        fail(str(exc))
    audit.record("account.created", actor=cli_actor(), account=account, role=role)
    db.session.commit()
    emit({"sub": account.id}, as_json, f"sub: {account.id}")


users.add_command(_create_command("user", "Create an account; it verifies its e-mail and enrols TOTP at first login."))
staff.add_command(_create_command(
    "support", "Create a support-staff account (it enrols TOTP at first sign-in like everyone)."))


@click.group("connectors")
def connectors_group():
    """Connector users (machine users of administrations)."""


@connectors_group.command("show")
@click.option("--administration", "administration_id", required=True, help="The administration's id.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def connectors_show(administration_id, as_json):
    """The connector user of an administration."""
    from ..services import connectors

    connector = connectors.for_administration(administration_id) or fail(
        f"no administration with id {administration_id!r} (or it has no connector user)")
    emit({"username": connector.username}, as_json, connector.username)


@click.group("firms")
def firms():
    """Accountancy firms."""


@firms.command("create")
@click.option("--name", required=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def firms_create(name, as_json):
    """Create an accountancy firm (an administration of kind firm) and its firm code, which
    clients type at sign-up or on their access page to give the firm access."""
    from ..extensions import db
    from ..services import administrations, audit

    if not name.strip() or len(name.strip()) > 200:
        fail("--name must be 1 to 200 characters")
    firm = administrations.create_firm(name)
    audit.record("firm.created", actor=cli_actor(), subject=firm.id, name=firm.name)
    db.session.commit()
    emit({"administration_id": firm.id, "firm_code": firm.firm_code}, as_json,
         f"administration_id: {firm.id}\nfirm_code: {firm.firm_code}")


@click.group("invitations")
def invitations_group():
    """Invitations to create or join an administration."""


@invitations_group.command("create")
@click.option("--email", required=True)
@click.option("--administration", "administration", required=True,
              help="The administration to create (role owner), or the id or unique name of the one to join.")
@click.option("--name", default="", help="The invitee's name.")
@click.option("--firm", "firm_id", help="The inviting firm's administration id: it gets access.")
@click.option("--role", type=click.Choice(["owner", "accountant", "employee"]), default="owner", show_default=True)
@click.option("--plan", type=click.Choice(["basic", "plus"]), default="basic", show_default=True)
@click.option("--locale", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def invitations_create(email, administration, name, firm_id, role, plan, locale, as_json):
    """Create an invitation and queue its mail."""
    from ..services import administrations, invitations

    firm = None
    if firm_id:
        firm = administrations.find(firm_id)
        if firm is None or firm.kind != "firm":
            fail(f"no firm with id {firm_id!r}")
    target = None
    if role != "owner":
        target = firm if firm is not None and administration in (firm.id, firm.name) else administrations.find(administration)
        if target is None:
            fail(f"no administration {administration!r} to join (give its id, or a unique name)")
    with committed():
        invitation, url = invitations.create(email, name, administration, role=role, firm=firm, target=target, plan=plan,
                                             actor=cli_actor(), inviter=firm.name if firm else current_app.config["PRODUCT_NAME"],
                                             locale=locale)
    data = {"id": invitation.id, "invitation_url": url, "expires_at": invitation.expires_at.isoformat() + "Z"}
    emit(data, as_json)


def _invitation_or_fail(invitation_id):
    from ..services import invitations

    return invitations.get(invitation_id) or fail(f"no invitation with id {invitation_id!r}")


@invitations_group.command("resend")
@click.argument("invitation_id")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def invitations_resend(invitation_id, as_json):
    """A fresh link (valid 14 days); the old one stops working."""
    from ..services import invitations

    invitation = _invitation_or_fail(invitation_id)
    with committed():
        url = invitations.resend(invitation, actor=cli_actor(),
                                 inviter=invitation.firm.name if invitation.firm else current_app.config["PRODUCT_NAME"])
    emit({"id": invitation.id, "invitation_url": url, "expires_at": invitation.expires_at.isoformat() + "Z"}, as_json)


@invitations_group.command("revoke")
@click.argument("invitation_id")
@click.option("--reason")
@with_appcontext
def invitations_revoke(invitation_id, reason):
    """Withdraw an invitation: its link stops working."""
    from ..services import invitations

    invitation = _invitation_or_fail(invitation_id)
    with committed():
        invitations.revoke(invitation, actor=cli_actor(), reason=reason)
    click.echo(f"revoked {invitation.id}")


@click.group("access")
def access_group():
    """Access to administrations, as their owners give it on the access page."""


def _administration_or_fail(identifier):
    from ..services import administrations

    return administrations.find(identifier) or fail(f"no administration {identifier!r} (give its id, or a unique name)")


@access_group.command("grant")
@click.option("--administration", "administration_id", required=True, help="The administration's id (or unique name).")
@click.option("--email", required=True, help="The address that gets access.")
@click.option("--role", required=True, help="accountant, employee or owner.")
@click.option("--locale", type=click.Choice(["nl", "en"]), default="nl", show_default=True, help="The mail's language.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def access_grant(administration_id, email, role, locale, as_json):
    """Give an address access with a role. An account gets it at once (and a mail); an
    address without an account gets an invitation and access when it is accepted.
    Prints {"status": "granted"|"invited"}."""
    from ..services import access

    administration = _administration_or_fail(administration_id)
    with committed():
        status = access.grant(administration, email, role, actor=cli_actor(), inviter=administration.name,
                              locale=locale)
    emit({"status": status}, as_json, status)


@access_group.command("revoke")
@click.option("--administration", "administration_id", required=True, help="The administration's id (or unique name).")
@click.option("--email", required=True)
@with_appcontext
def access_revoke(administration_id, email):
    """Take an address's access away (or withdraw its open invitation); the last owner stays."""
    from ..services import access

    administration = _administration_or_fail(administration_id)
    with committed():
        status = access.revoke(administration, email, actor=cli_actor())
    click.echo(f"{status} {email.strip()}")


@access_group.command("list")
@click.option("--administration", "administration_id", required=True, help="The administration's id (or unique name).")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def access_list(administration_id, as_json):
    """The members of an administration: [{"email", "role"}]."""
    from ..services import access

    members = access.listed(_administration_or_fail(administration_id))
    emit(members, as_json, "\n".join(f"{m['email']}\t{m['role']}" for m in members) or "no members")


@click.group("accounts")
def accounts():
    """Inspect accounts."""


@accounts.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def accounts_show(email, as_json):
    """Status of an account: active, locked or disabled; e-mail verified; TOTP enrolled; passkeys."""
    from ..services import accounts as svc
    from ..services import passkeys

    account = svc.find_by_email(email.strip()) or fail(f"no account with e-mail {email!r}")
    data = {
        "sub": account.id,
        "email": account.email,
        "status": svc.status(account),
        "email_verified": bool(account.email_verified),
        "totp_enrolled": account.totp_enrolled,
        "passkeys": passkeys.count(account),
    }
    emit(data, as_json)


COMMANDS = (users, staff, firms, invitations_group, access_group, connectors_group, accounts)
