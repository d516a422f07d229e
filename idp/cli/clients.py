"""`idp clients`: relying applications (OAuth clients)."""

from __future__ import annotations

import secrets

import click
from flask.cli import with_appcontext

from .common import check_uri, cli_actor, emit, fail


@click.group("clients")
def clients():
    """Relying applications (OAuth clients)."""


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
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def clients_create(
    name, redirect_uris, post_logout_uris, backchannel_logout_uri, grant_types, scopes, public, first_party, pkce_optional, as_json
):
    """Register a client; prints its client_id and (once) its secret."""
    from ..extensions import db
    from ..models import Client
    from ..oauth.supported import SCOPES
    from ..services import audit
    from ..services.crypto import token_hash

    grant_types = list(dict.fromkeys(grant_types or ["authorization_code", "refresh_token"]))
    scopes = list(dict.fromkeys(s for value in scopes for s in value.split())) or list(SCOPES)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        fail(f"unknown scope {unknown[0]!r}; known: {' '.join(SCOPES)}")
    for uri in redirect_uris:
        check_uri(uri, "--redirect-uri")
    for uri in post_logout_uris:
        check_uri(uri, "--post-logout-redirect-uri")
    if backchannel_logout_uri:
        check_uri(backchannel_logout_uri, "--backchannel-logout-uri")
    if "authorization_code" in grant_types and not redirect_uris:
        fail("--redirect-uri is required for the authorization_code grant")
    if public and ("client_credentials" in grant_types or "password" in grant_types):
        fail("a public client cannot use client_credentials or password")
    if public and pkce_optional:
        fail("a public client always uses PKCE")
    client_id = secrets.token_urlsafe(18)
    secret = None if public else secrets.token_urlsafe(32)
    client = Client(
        id=client_id,
        name=name.strip() or fail("--name must not be empty"),
        secret_hash=token_hash(secret) if secret else None,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_uris),
        backchannel_logout_uri=backchannel_logout_uri,
        grant_types=grant_types,
        scope=" ".join(scopes),
        token_endpoint_auth_method="none" if public else "client_secret_basic",
        first_party=first_party,
        pkce_required=not pkce_optional,
    )
    db.session.add(client)
    audit.record("client.created", actor=cli_actor(), subject=client_id, name=name)
    db.session.commit()
    out = {"client_id": client_id}
    if secret:
        out["client_secret"] = secret
    emit(out, as_json, f"client_id: {client_id}" + (f"\nclient_secret: {secret}" if secret else ""))


COMMANDS = (clients,)
