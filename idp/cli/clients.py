"""`idp clients`: relying applications (OAuth clients)."""

from __future__ import annotations

import json
import re
import secrets

import click
from flask.cli import with_appcontext

from .common import check_uri, cli_actor, emit, fail


@click.group("clients")
def clients():
    """Relying applications (OAuth clients)."""


def _client_jwks(auth_method, jwks_uri, jwks_file) -> dict | None:
    """The public JWKS given with --jwks (checked), for private_key_jwt only."""
    from joserfc.jwk import KeySet

    if auth_method != "private_key_jwt":
        if jwks_uri or jwks_file:
            fail("--jwks-uri and --jwks are for --token-endpoint-auth-method private_key_jwt")
        return None
    if bool(jwks_uri) == bool(jwks_file):
        fail("private_key_jwt needs one of --jwks-uri or --jwks")
    if jwks_uri:
        check_uri(jwks_uri, "--jwks-uri")
        return None
    try:
        jwks = json.load(jwks_file)
        keys = KeySet.import_key_set(jwks)
    except Exception:  # noqa: BLE001 (any unreadable key set is the operator's input error)
        fail("--jwks must be a file with a JSON Web Key Set")
    if any(key.is_private for key in keys.keys):
        fail("--jwks must hold public keys only")
    return jwks


def _localized_names(values) -> dict[str, str]:
    """--localized-name nl=Boekhoudportaal ... as {"nl": "Boekhoudportaal"}."""
    names = {}
    for value in values:
        lang, _, name = value.partition("=")
        lang, name = lang.strip().lower(), name.strip()
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", lang) or not name or len(name) > 200:
            fail(f"--localized-name must be LANG=NAME (a language tag such as nl, a name of 1 to 200 characters): {value!r}")
        names[lang] = name
    return names


def _redirect_uris(option: str, uris, public: bool) -> list[str]:
    """Web, loopback and (for public clients) private-use redirect URIs (RFC 8252)."""
    from .. import redirect_uris

    for uri in uris:
        problem = redirect_uris.problem(uri, public=public)
        if problem:
            fail(f"{option} {problem}: {uri!r}")
    return list(uris)


def _origins(allowed_origins, redirect_uris) -> list[str]:
    """The browser origins that may call the protocol endpoints: the ones given, or else
    those of the web redirect URIs."""
    from .. import redirect_uris as uris

    if not allowed_origins:
        return sorted({o for o in map(uris.web_origin, redirect_uris) if o})
    origins = []
    for value in allowed_origins:
        origin = uris.origin(value)
        if origin is None:
            fail(f"--allowed-origin must be an origin such as https://app.example (scheme, host, port; "
                 f"no path, no wildcard): {value!r}")
        origins.append(origin)
    return sorted(set(origins))


@clients.command("create")
@click.option("--name", required=True, help="The name people see (client_name).")
@click.option("--localized-name", "localized_names", multiple=True, metavar="LANG=NAME",
              help="Repeatable. The name in one language (client_name#LANG), e.g. nl=Boekhoudportaal.")
@click.option("--client-uri", help="The app's home page, where people go back to it from the provider's pages.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Repeatable. https, loopback (http://127.0.0.1/cb without a port takes any port) or, "
                   "for --public, a private-use scheme (com.example.app:/cb).")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--allowed-origin", "allowed_origins", multiple=True,
              help="Repeatable. A browser origin whose pages may call /token, /userinfo, /revoke and /par "
                   "(CORS). Default: the origins of the web redirect URIs.")
@click.option("--require-par", is_flag=True, help="Accept authorization requests only pushed first (RFC 9126).")
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
@click.option(
    "--access-token-format",
    type=click.Choice(["opaque", "jwt"]),
    default="opaque",
    show_default=True,
    help="jwt: signed access tokens (RFC 9068) that an API can read without introspection.",
)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def clients_create(
    name, localized_names, client_uri, redirect_uris, post_logout_uris, allowed_origins, require_par,
    backchannel_logout_uri, grant_types, scopes, public, first_party, pkce_optional, auth_method, jwks_uri, jwks_file,
    resource_server, access_token_format, as_json
):
    """Register a client; prints its client_id and (once) its secret."""
    from ..extensions import db
    from ..models import Client, ClientOrigin
    from ..oauth.supported import SCOPES
    from ..services import audit
    from ..services.crypto import token_hash

    jwks = _client_jwks(auth_method, jwks_uri, jwks_file)
    names = _localized_names(localized_names)
    if client_uri:
        check_uri(client_uri, "--client-uri")
    if public and resource_server:
        fail("a resource server authenticates: it cannot be --public")
    default_grants = [] if resource_server else ["authorization_code", "refresh_token"]
    grant_types = list(dict.fromkeys(grant_types or default_grants))
    scopes = list(dict.fromkeys(s for value in scopes for s in value.split())) or list(SCOPES)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        fail(f"unknown scope {unknown[0]!r}; known: {' '.join(SCOPES)}")
    redirect_uris = _redirect_uris("--redirect-uri", redirect_uris, public)
    post_logout_uris = _redirect_uris("--post-logout-redirect-uri", post_logout_uris, public)
    origins = _origins(allowed_origins, redirect_uris)
    if backchannel_logout_uri:
        check_uri(backchannel_logout_uri, "--backchannel-logout-uri")
    if "authorization_code" in grant_types and not redirect_uris:
        fail("--redirect-uri is required for the authorization_code grant")
    if public and ("client_credentials" in grant_types or "password" in grant_types):
        fail("a public client cannot use client_credentials or password")
    if public and pkce_optional:
        fail("a public client always uses PKCE")
    if public and auth_method:
        fail("a public client does not authenticate (--token-endpoint-auth-method)")
    client_id = secrets.token_urlsafe(18)
    secret = None if public or auth_method == "private_key_jwt" else secrets.token_urlsafe(32)
    client = Client(
        id=client_id,
        name=name.strip() or fail("--name must not be empty"),
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
        access_token_format=access_token_format,
        jwks=jwks,
        jwks_uri=jwks_uri,
        client_uri=client_uri or None,
        localized_names=names or None,
        require_par=require_par,
    )
    db.session.add(client)
    db.session.add_all(ClientOrigin(client_id=client_id, origin=origin) for origin in origins)
    audit.record("client.created", actor=cli_actor(), subject=client_id, name=name)
    db.session.commit()
    out = {"client_id": client_id}
    if secret:
        out["client_secret"] = secret
    emit(out, as_json, f"client_id: {client_id}" + (f"\nclient_secret: {secret}" if secret else ""))


COMMANDS = (clients,)
