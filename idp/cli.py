"""The `idp` command: serve, database, clients, accounts, keys, mail and audit."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from .config import ConfigError


def _fail(message: str):
    raise click.ClickException(message)


def _emit(data, as_json: bool, text: str | None = None) -> None:
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


def _check_uri(value: str, option: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        _fail(f"{option} must be an absolute http(s) URL without a fragment: {value!r}")
    return value


def _create_app(*_args, **_kwargs):
    from . import create_app

    return create_app()


def main() -> None:
    try:
        cli.main(prog_name="idp")
    except ConfigError as exc:
        click.echo(f"idp: configuration error: {exc}", err=True)
        sys.exit(2)


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


def register(app) -> None:
    """Commands that need the app are added to its CLI too (tests use app.test_cli_runner)."""
    for command in COMMANDS:
        app.cli.add_command(command)


# -- serve ------------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per worker.")
@click.option(
    "--server",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    show_default=True,
    help="The WSGI server (see bench/README.md for why granian is the default).",
)
@click.option("--no-mail", is_flag=True, help="Do not run the mail delivery loop beside the server.")
@with_appcontext
def serve(host, port, workers, threads, server, no_mail):
    """Serve production-style (N worker processes), and deliver queued mail."""
    from .extensions import db
    from .services import keys

    keys.ensure()
    db.session.remove()
    db.engine.dispose()
    deliverer = None
    if not no_mail:
        deliverer = subprocess.Popen([sys.executable, "-m", "idp.cli", "mail", "deliver", "--loop"])
    try:
        click.echo(f"idp serving on http://{host}:{port} with {workers} {server} workers", err=True)
        (_serve_granian if server == "granian" else _serve_gunicorn)(host, port, workers, threads)
    finally:
        if deliverer is not None:
            deliverer.send_signal(signal.SIGTERM)
            try:
                deliverer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                deliverer.kill()


def _serve_granian(host, port, workers, threads):
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "idp:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        websockets=False,
        workers=workers,
        blocking_threads=threads,
        respawn_failed_workers=True,
        log_access=False,
    ).serve()


def _serve_gunicorn(host, port, workers, threads):
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("proc_name", "idp")
            # Several servers on one machine must not share gunicorn's control socket.
            self.cfg.set("control_socket_disable", True)

        def load(self):
            from . import create_app

            return create_app()

    Server().run()


# -- clients ----------------------------------------------------------------------


@click.group("clients")
def clients():
    """Relying applications (OAuth clients)."""


def _client_jwks(auth_method, jwks_uri, jwks_file) -> dict | None:
    """The public JWKS given with --jwks (checked), for private_key_jwt only."""
    from joserfc.jwk import KeySet

    if auth_method != "private_key_jwt":
        if jwks_uri or jwks_file:
            _fail("--jwks-uri and --jwks are for --token-endpoint-auth-method private_key_jwt")
        return None
    if bool(jwks_uri) == bool(jwks_file):
        _fail("private_key_jwt needs one of --jwks-uri or --jwks")
    if jwks_uri:
        _check_uri(jwks_uri, "--jwks-uri")
        return None
    try:
        jwks = json.load(jwks_file)
        keys = KeySet.import_key_set(jwks)
    except Exception:  # noqa: BLE001 (any unreadable key set is the operator's input error)
        _fail("--jwks must be a file with a JSON Web Key Set")
    if any(key.is_private for key in keys.keys):
        _fail("--jwks must hold public keys only")
    return jwks


@clients.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--backchannel-logout-uri")
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials", "password"]),
    help="Repeatable. Default: authorization_code and refresh_token.",
)
@click.option("--scope", "scopes", multiple=True, help="Repeatable. Default: every scope.")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE only).")
@click.option("--first-party", is_flag=True, help="Skip the consent screen.")
@click.option(
    "--pkce-optional",
    is_flag=True,
    help="Let this confidential client use the code flow without PKCE (certification suites). Never for public clients.",
)
@click.option(
    "--token-endpoint-auth-method",
    "auth_method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt"]),
    help="The one method a confidential client authenticates with. Default: either secret method.",
)
@click.option("--jwks-uri", help="private_key_jwt: where the client publishes its public keys.")
@click.option("--jwks", "jwks_file", type=click.File("r"), help="private_key_jwt: a file with the client's public JWKS.")
@click.option(
    "--resource-server",
    is_flag=True,
    help="An API that may introspect tokens issued to other clients. Default grant types: none.",
)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def clients_create(
    name, redirect_uris, post_logout_uris, backchannel_logout_uri, grant_types, scopes, public, first_party, pkce_optional,
    auth_method, jwks_uri, jwks_file, resource_server, as_json
):
    """Register a client; prints its client_id and (once) its secret."""
    from .extensions import db
    from .models import Client
    from .oauth.server import SCOPES
    from .services import audit
    from .services.crypto import token_hash

    jwks = _client_jwks(auth_method, jwks_uri, jwks_file)
    if public and resource_server:
        _fail("a resource server authenticates: it cannot be --public")
    default_grants = [] if resource_server else ["authorization_code", "refresh_token"]
    grant_types = list(dict.fromkeys(grant_types or default_grants))
    scopes = list(dict.fromkeys(s for value in scopes for s in value.split())) or list(SCOPES)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        _fail(f"unknown scope {unknown[0]!r}; known: {' '.join(SCOPES)}")
    for uri in redirect_uris:
        _check_uri(uri, "--redirect-uri")
    for uri in post_logout_uris:
        _check_uri(uri, "--post-logout-redirect-uri")
    if backchannel_logout_uri:
        _check_uri(backchannel_logout_uri, "--backchannel-logout-uri")
    if "authorization_code" in grant_types and not redirect_uris:
        _fail("--redirect-uri is required for the authorization_code grant")
    if public and ("client_credentials" in grant_types or "password" in grant_types):
        _fail("a public client cannot use client_credentials or password")
    if public and pkce_optional:
        _fail("a public client always uses PKCE")
    if public and auth_method:
        _fail("a public client does not authenticate (--token-endpoint-auth-method)")
    client_id = secrets.token_urlsafe(18)
    secret = None if public or auth_method == "private_key_jwt" else secrets.token_urlsafe(32)
    client = Client(
        id=client_id,
        name=name.strip() or _fail("--name must not be empty"),
        secret_hash=token_hash(secret) if secret else None,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_uris),
        backchannel_logout_uri=backchannel_logout_uri,
        grant_types=grant_types,
        scope=" ".join(scopes),
        token_endpoint_auth_method="none" if public else auth_method or "client_secret_basic client_secret_post",
        first_party=first_party,
        pkce_required=not pkce_optional,
        resource_server=resource_server,
        jwks=jwks,
        jwks_uri=jwks_uri,
    )
    db.session.add(client)
    audit.record("client.created", actor=cli_actor(), subject=client_id, name=name)
    db.session.commit()
    out = {"client_id": client_id}
    if secret:
        out["client_secret"] = secret
    _emit(out, as_json, f"client_id: {client_id}" + (f"\nclient_secret: {secret}" if secret else ""))


# -- users, firms, accounts --------------------------------------------------------


@click.group("users")
def users():
    """People's accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default="")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def users_create(email, password, name, as_json):
    """Create an account; it verifies its e-mail and enrols TOTP at first login."""
    _create_account(email, password, name, "user", as_json)


def _create_account(email, password, name, role, as_json):
    from .errors import InvalidEmail
    from .extensions import db
    from .services import accounts, audit

    if not password:
        _fail("--password must not be empty")
    try:
        account = accounts.create_account(email, password, name=name, role=role)
    except InvalidEmail:
        _fail(f"not a valid e-mail address: {email!r}")
    except ValueError as exc:
        _fail(str(exc))
    audit.record("account.created", actor=cli_actor(), account=account, role=role)
    db.session.commit()
    _emit({"sub": account.id}, as_json, f"sub: {account.id}")


@click.group("staff")
def staff():
    """Support staff."""


@staff.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default="")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def staff_create(email, password, name, as_json):
    """Create a support-staff account (it enrols TOTP at first sign-in like everyone)."""
    _create_account(email, password, name, "support", as_json)


@click.group("support")
def support_group():
    """What support staff do: unlock, release, reset 2FA, disable, enable."""


def _account_or_fail(email):
    from .services import accounts

    account = accounts.find_by_email(email.strip())
    if account is None:
        _fail(f"no account with e-mail {email!r}")
    return account


def _support_action(func, target, reason):
    from .errors import DomainError
    from .extensions import db

    try:
        func(target, actor=cli_actor(), ip=None, reason=reason)
    except DomainError as exc:
        _fail(exc.message())
    db.session.commit()


@support_group.command("unlock")
@click.argument("email")
@click.option("--reason")
@with_appcontext
def support_unlock(email, reason):
    """End a lockout (also one that only support may end). A connector username unlocks that connector user."""
    from .services import connectors, support

    if "@" not in email:
        connector = support.find_connector(email)
        if connector is None:
            _fail(f"no account or connector user {email!r}")
        _support_action(connectors.unlock, connector, reason)
    else:
        _support_action(support.unlock, _account_or_fail(email), reason)
    click.echo(f"unlocked {email}")


@support_group.command("release-reset-throttle")
@click.argument("username")
@click.option("--reason")
@with_appcontext
def support_release(username, reason):
    """Allow a connector user another password reset within 24 hours."""
    from .services import support

    connector = support.find_connector(username.split("@")[0])
    if connector is None:
        _fail(f"no connector user {username!r}")
    _support_action(support.release_reset_throttle, connector, reason)
    click.echo(f"released {connector.username}")


@support_group.command("reset-2fa")
@click.argument("email")
@click.option("--reason", required=True)
@with_appcontext
def support_reset_2fa(email, reason):
    """Switch two-step verification off; the next sign-in enrols a new authenticator."""
    from .services import support

    _support_action(support.reset_2fa, _account_or_fail(email), reason)
    click.echo(f"two-step verification reset for {email}")


@support_group.command("disable")
@click.argument("email")
@click.option("--reason", required=True)
@with_appcontext
def support_disable(email, reason):
    """Refuse sign-in, end every session and revoke every token."""
    from .services import support

    _support_action(support.disable, _account_or_fail(email), reason)
    click.echo(f"disabled {email}")


@support_group.command("enable")
@click.argument("email")
@click.option("--reason", required=True)
@with_appcontext
def support_enable(email, reason):
    """Allow sign-in again."""
    from .services import support

    _support_action(support.enable, _account_or_fail(email), reason)
    click.echo(f"enabled {email}")


support_group.name = "support"


@click.group("connectors")
def connectors_group():
    """Connector users (machine users of administrations)."""


@connectors_group.command("show")
@click.option("--administration", "administration_id", required=True, help="The administration's id.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def connectors_show(administration_id, as_json):
    """The connector user of an administration."""
    from .services import connectors

    connector = connectors.for_administration(administration_id)
    if connector is None:
        _fail(f"no administration with id {administration_id!r} (or it has no connector user)")
    _emit({"username": connector.username}, as_json, connector.username)


connectors_group.name = "connectors"


@click.group("firms")
def firms():
    """Accountancy firms."""


@firms.command("create")
@click.option("--name", required=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def firms_create(name, as_json):
    """Create an accountancy firm (an administration of kind firm)."""
    from .extensions import db
    from .services import administrations, audit

    if not name.strip() or len(name.strip()) > 200:
        _fail("--name must be 1 to 200 characters")
    firm = administrations.create_firm(name)
    audit.record("firm.created", actor=cli_actor(), subject=firm.id, name=firm.name)
    db.session.commit()
    _emit({"administration_id": firm.id}, as_json, f"administration_id: {firm.id}")


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
    from .errors import DomainError
    from .extensions import db
    from .services import administrations, invitations

    firm = None
    if firm_id:
        firm = administrations.find(firm_id)
        if firm is None or firm.kind != "firm":
            _fail(f"no firm with id {firm_id!r}")
    target = None
    if role != "owner":
        target = firm if firm is not None and administration in (firm.id, firm.name) else administrations.find(administration)
        if target is None:
            _fail(f"no administration {administration!r} to join (give its id, or a unique name)")
    try:
        invitation, url = invitations.create(email, name, administration, role=role, firm=firm, target=target, plan=plan,
                                             actor=cli_actor(), inviter=firm.name if firm else current_app.config["PRODUCT_NAME"],
                                             locale=locale)
    except DomainError as exc:
        _fail(exc.message())
    db.session.commit()
    data = {"id": invitation.id, "invitation_url": url, "expires_at": invitation.expires_at.isoformat() + "Z"}
    _emit(data, as_json)


def _invitation_or_fail(invitation_id):
    from .services import invitations

    invitation = invitations.get(invitation_id)
    if invitation is None:
        _fail(f"no invitation with id {invitation_id!r}")
    return invitation


@invitations_group.command("resend")
@click.argument("invitation_id")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def invitations_resend(invitation_id, as_json):
    """A fresh link (valid 14 days); the old one stops working."""
    from .errors import DomainError
    from .extensions import db
    from .services import invitations

    invitation = _invitation_or_fail(invitation_id)
    try:
        url = invitations.resend(invitation, actor=cli_actor(),
                                 inviter=invitation.firm.name if invitation.firm else current_app.config["PRODUCT_NAME"])
    except DomainError as exc:
        _fail(exc.message())
    db.session.commit()
    _emit({"id": invitation.id, "invitation_url": url, "expires_at": invitation.expires_at.isoformat() + "Z"}, as_json)


@invitations_group.command("revoke")
@click.argument("invitation_id")
@click.option("--reason")
@with_appcontext
def invitations_revoke(invitation_id, reason):
    """Withdraw an invitation: its link stops working."""
    from .errors import DomainError
    from .extensions import db
    from .services import invitations

    invitation = _invitation_or_fail(invitation_id)
    try:
        invitations.revoke(invitation, actor=cli_actor(), reason=reason)
    except DomainError as exc:
        _fail(exc.message())
    db.session.commit()
    click.echo(f"revoked {invitation.id}")


invitations_group.name = "invitations"


@click.group("accounts")
def accounts():
    """Inspect accounts."""


@accounts.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def accounts_show(email, as_json):
    """Status of an account: active, locked or disabled; e-mail verified; TOTP enrolled."""
    from . import clock
    from .services import accounts as svc

    account = svc.find_by_email(email.strip())
    if account is None:
        _fail(f"no account with e-mail {email!r}")
    data = {
        "sub": account.id,
        "email": account.email,
        "status": account.status(clock.now()),
        "email_verified": bool(account.email_verified),
        "totp_enrolled": account.totp_enrolled,
    }
    _emit(data, as_json)


# -- keys, mail, audit -------------------------------------------------------------


@click.group("keys")
def keys_group():
    """Signing keys."""


keys_group.name = "keys"


@keys_group.command("rotate")
@with_appcontext
def keys_rotate():
    """Publish a new signing key; old keys stay published until their tokens expire."""
    from .services import audit, keys
    from .extensions import db

    row = keys.rotate()
    audit.record("keys.rotated", actor=cli_actor(), subject=row.kid)
    db.session.commit()
    click.echo(f"new signing key: {row.kid}")


@click.group("mail")
def mail_group():
    """Queued mail."""


mail_group.name = "mail"


@mail_group.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until stopped.")
@with_appcontext
def mail_deliver(loop):
    """Send queued mail over SMTP (once, or in a loop)."""
    import threading

    from .services import mailer

    if not current_app.config["MAIL_SERVER"]:
        if not loop:
            click.echo("no IDP_MAIL_SERVER configured: mail stays queued", err=True)
            return
        click.echo("no IDP_MAIL_SERVER configured: mail stays queued (dev mailbox in development)", err=True)
    if loop:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        mailer.deliver_forever(stop)
        return
    sent, failed = mailer.deliver_due()
    click.echo(f"sent {sent}, failed {failed}")


@click.group("audit")
def audit_group():
    """The audit trail."""


audit_group.name = "audit"


@audit_group.command("list")
@click.option("--subject", help="Only events about this e-mail address.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def audit_list(subject, limit, as_json):
    """Audit events, newest first."""
    from .services import audit

    events = [audit.as_dict(e) for e in audit.recent(subject, limit)]
    if as_json:
        _emit(events, True)
        return
    for e in events:
        click.echo(f"{e['at']}  {e['action']:<28} {e['outcome']:<8} {e['subject'] or '-':<32} {e['actor']}  {e['ip'] or ''}")


def _db_group():
    from flask_migrate.cli import db

    db.help = "Database migrations (`idp db upgrade` applies them)."
    return db


COMMANDS = (serve, clients, users, staff, firms, invitations_group, connectors_group, accounts, support_group, keys_group,
            mail_group, audit_group)
for _command in (*COMMANDS, _db_group()):
    cli.add_command(_command)


if __name__ == "__main__":
    main()
