#!/usr/bin/env python3
"""Pre-issued tokens for the refresh and introspection benchmarks, written straight into idp's database.

    python bench/pool.py --client-id=ID --count N --out FILE [--scope "openid offline_access"]

(``--client-id=ID`` in one argument: a client id may start with "-".)

Run with the server's environment (``IDP_DATABASE_URL``, ``IDP_SECRET_KEY``, ...). It creates one
account (``bench-pool-...@example.com``, never signed in) and N grants of that account to the
client, each with one live token as a code exchange would have stored it (N families, as N
sign-ins make): a random opaque access token and refresh token (43 characters, as idp issues
them), stored as their SHA-256, the refresh token unused and valid for the client's refresh
lifetime. The N refresh
token values go to FILE, one a line; with ``--access-token-out`` the access token of the first
row goes to that file (for introspection). Inserted in bulk (one INSERT a thousand rows), never
one request per token, so seeding 100,000 takes seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import secrets
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

CHUNK = 1000


def seed(app, client_id: str, count: int, scope: str) -> tuple[list[str], list[str]]:
    """(refresh tokens, access tokens) of ``count`` fresh families of ``client_id``, one token each."""
    from sqlalchemy import insert

    from idp import clock
    from idp.extensions import db
    from idp.models import Account, Client, Grant, Token
    from idp.models.base import new_id
    from idp.services.crypto import token_hash

    with app.app_context():
        client = db.session.get(Client, client_id)
        if client is None:
            raise SystemExit(f"no client {client_id!r}")
        now = clock.now()
        account = Account(email=f"bench-pool-{secrets.token_hex(4)}@example.com", name="Bench pool",
                          email_verified=True)
        db.session.add(account)
        db.session.flush()
        refresh_lifetime = dt.timedelta(seconds=app.config["REFRESH_TOKEN_LIFETIME"])
        access_lifetime = app.config["ACCESS_TOKEN_LIFETIME"]
        refresh_tokens, access_tokens = [], []
        grants, rows = [], []
        for _ in range(count):
            rt, at = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            refresh_tokens.append(rt)
            access_tokens.append(at)
            grant_id = new_id()
            grants.append({"id": grant_id, "client_id": client_id, "account_id": account.id, "created_at": now,
                           "amr": ["pwd", "otp", "mfa"]})
            rows.append({"client_id": client_id, "account_id": account.id, "grant_id": grant_id,
                         "access_token_hash": token_hash(at), "refresh_token_hash": token_hash(rt),
                         "scope": scope, "issued_at": now, "expires_in": access_lifetime,
                         "refresh_expires_at": now + refresh_lifetime,
                         "auth_time": clock.to_timestamp(now)})
        for start in range(0, len(rows), CHUNK):
            db.session.execute(insert(Grant), grants[start:start + CHUNK])
            db.session.execute(insert(Token), rows[start:start + CHUNK])
        db.session.commit()
    return refresh_tokens, access_tokens


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pre-issue refresh tokens into idp's database for bench/tokens.py.")
    p.add_argument("--client-id", required=True)
    p.add_argument("--count", type=int, required=True, help="tokens to issue (1 to 1,000,000)")
    p.add_argument("--scope", default="openid offline_access")
    p.add_argument("--out", required=True, help="file for the refresh tokens, one a line")
    p.add_argument("--access-token-out", help="file for one access token of the family")
    args = p.parse_args(argv)
    if not 1 <= args.count <= 1_000_000:
        p.error("--count must be between 1 and 1,000,000")
    from idp import create_app

    logging.disable(logging.INFO)
    app = create_app()
    refresh_tokens, access_tokens = seed(app, args.client_id, args.count, args.scope)
    Path(args.out).write_text("\n".join(refresh_tokens) + "\n")
    if args.access_token_out:
        Path(args.access_token_out).write_text(access_tokens[0] + "\n")
    print(f"{len(refresh_tokens)} refresh tokens for {args.client_id} in {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
