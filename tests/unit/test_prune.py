"""`idp db prune`: exactly what has expired goes, what is still needed stays, counts are printed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.extensions import db
from idp.models import (AuditEvent, AuthorizationCode, EmailCode, Flow, Grant, OutboxLogout, OutboxMail,
                        PushedAuthorizationRequest, RevokedToken, SsoSession, Token, UsedCaptcha, UsedClientAssertion,
                        UsedDpopProof)
from idp.ops.commands import prune_command
from idp.services import audit

from ..helpers import SetAfter, cli_runner, make_account, make_client

NOW = dt.datetime(2026, 3, 2, 12, 0, 0)
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def seed(app, account_id: str, client_id: str) -> dict[str, set]:
    """Rows of every kind, expired and live; returns the keys that must survive."""
    add = db.session.add
    # Flows: expired long ago; live; expired but its code still counts towards the hourly limit.
    add(Flow(id="flow-dead", kind="login", state="password", created_at=NOW - 2 * HOUR, expires_at=NOW - HOUR))
    add(Flow(id="flow-live", kind="login", state="password", created_at=NOW - 5 * MIN, expires_at=NOW + 25 * MIN))
    add(Flow(id="flow-recent-code", kind="login", state="verify_email", created_at=NOW - 50 * MIN, expires_at=NOW - 20 * MIN))
    db.session.flush()

    def code(key, created, expires, flow_id=None):
        add(EmailCode(email=f"{key}@example.com", purpose="verify", code_hash=key, created_at=created, expires_at=expires,
                      flow_id=flow_id))

    code("code-dead", NOW - 2 * HOUR, NOW - 110 * MIN)
    code("code-in-hourly-window", NOW - 40 * MIN, NOW - 30 * MIN, flow_id="flow-recent-code")
    code("code-live", NOW - 2 * MIN, NOW + 8 * MIN)

    def session(sid, expires, ended=None):
        add(SsoSession(id=sid, account_id=account_id, auth_time=NOW - HOUR, expires_at=expires, ended_at=ended,
                    created_at=NOW - HOUR))

    session("sess-ended", NOW + HOUR, ended=NOW - MIN)
    session("sess-expired", NOW - MIN)
    session("sess-active", NOW + HOUR)
    db.session.flush()

    grants = set()

    def grant(grant_id):
        if grant_id not in grants:
            grants.add(grant_id)
            add(Grant(id=grant_id, client_id=client_id, account_id=account_id, created_at=NOW - 40 * DAY))
            db.session.flush()
        return grant_id

    def authz(key, expires, session_id=None, used=None):
        add(AuthorizationCode(grant_id=grant("g-" + key), code_hash=key, client_id=client_id, account_id=account_id, session_id=session_id,
                              auth_time=clock.to_timestamp(NOW - HOUR), created_at=expires - MIN, expires_at=expires,
                              used_at=used))

    authz("authz-dead", NOW - MIN, used=NOW - 2 * MIN)
    authz("authz-dead-of-ended-session", NOW - MIN, session_id="sess-ended")
    authz("authz-used-not-expired", NOW + 30 * dt.timedelta(seconds=1), used=NOW - dt.timedelta(seconds=10))
    authz("authz-of-active-session", NOW - 30 * MIN, session_id="sess-active")

    def token(key, family, issued, expires_in, refresh_expires=None, refresh_used=None, revoked=None):
        add(Token(client_id=client_id, account_id=account_id, grant_id=grant(family), access_token_hash=f"a-{key}",
                  refresh_token_hash=f"r-{key}" if refresh_expires else None, issued_at=issued, expires_in=expires_in,
                  refresh_expires_at=refresh_expires, refresh_used_at=refresh_used, revoked_at=revoked))

    # A family where nothing can be used any more: two rotated members, both past every lifetime.
    token("dead-1", "grant-dead", NOW - 40 * DAY, 3600, NOW - 10 * DAY, refresh_used=NOW - 39 * DAY)
    token("dead-2", "grant-dead", NOW - 39 * DAY, 3600, NOW - 9 * DAY, revoked=NOW - 20 * DAY)
    # A family whose old, rotated-away member must stay: the newest member is still usable.
    token("fam-old", "grant-live", NOW - 40 * DAY, 3600, NOW - 10 * DAY, refresh_used=NOW - DAY)
    token("fam-new", "grant-live", NOW - DAY, 3600, NOW + 29 * DAY)
    # Access tokens without refresh: expired, and still valid.
    token("access-dead", "grant-access-dead", NOW - 2 * HOUR, 3600)
    token("access-live", "grant-access-live", NOW - 10 * MIN, 3600)

    add(RevokedToken(token_hash="revoked-dead", expires_at=NOW - MIN))
    add(RevokedToken(token_hash="revoked-live", expires_at=NOW + MIN))
    add(UsedCaptcha(signature="captcha-dead", expires_at=NOW - MIN))
    add(UsedCaptcha(signature="captcha-live", expires_at=NOW + MIN))
    add(UsedClientAssertion(id="assertion-dead", expires_at=NOW - MIN))
    add(UsedClientAssertion(id="assertion-live", expires_at=NOW + MIN))
    add(UsedDpopProof(id="proof-dead", expires_at=NOW - MIN))
    add(UsedDpopProof(id="proof-live", expires_at=NOW + MIN))
    add(PushedAuthorizationRequest(id="par-dead", client_id=client_id, params={}, expires_at=NOW - MIN))
    add(PushedAuthorizationRequest(id="par-used-dead", client_id=client_id, params={}, expires_at=NOW - MIN,
                                   used_at=NOW - 2 * MIN))
    add(PushedAuthorizationRequest(id="par-live", client_id=client_id, params={}, expires_at=NOW + MIN))

    def mail(key, status, created, sent=None):
        add(OutboxMail(recipient=f"{key}@example.com", subject=key, text="", kind="test", status=status,
                       created_at=created, next_attempt_at=created, sent_at=sent))

    mail("mail-sent-old", "sent", NOW - 8 * DAY, NOW - 8 * DAY)
    mail("mail-sent-recent", "sent", NOW - DAY, NOW - DAY)
    mail("mail-abandoned-old", "abandoned", NOW - 9 * DAY)
    mail("mail-queued-old", "queued", NOW - 30 * DAY)

    def logout(key, status, created, delivered=None):
        add(OutboxLogout(client_id=client_id, session_id=key, account_id=account_id, status=status, created_at=created,
                         next_attempt_at=created, delivered_at=delivered))

    logout("logout-delivered-old", "delivered", NOW - 8 * DAY, NOW - 8 * DAY)
    logout("logout-delivered-recent", "delivered", NOW - DAY, NOW - DAY)
    logout("logout-abandoned-old", "abandoned", NOW - 9 * DAY)
    logout("logout-queued-old", "queued", NOW - 30 * DAY)
    audit.record("test.old_event", subject="old@example.com")
    db.session.commit()
    return {
        "flows": {"flow-live", "flow-recent-code"},
        "email_codes": {"code-in-hourly-window", "code-live"},
        "sessions": {"sess-active"},
        "authorization_codes": {"authz-used-not-expired", "authz-of-active-session"},
        "tokens": {"a-fam-old", "a-fam-new", "a-access-live"},
        # A grant stays while a token or the code of its family does.
        "grants": {"grant-live", "grant-access-live", "g-authz-used-not-expired", "g-authz-of-active-session"},
        "revoked_tokens": {"revoked-live"},
        "used_captchas": {"captcha-live"},
        "used_client_assertions": {"assertion-live"},
        "used_dpop_proofs": {"proof-live"},
        "pushed_authorization_requests": {"par-live"},
        "outbox": {"mail-sent-recent@example.com", "mail-queued-old@example.com"},
        "backchannel_outbox": {"logout-delivered-recent", "logout-queued-old"},
    }


def remaining() -> dict[str, set]:
    return {
        "flows": set(db.session.scalars(select(Flow.id))),
        "email_codes": set(db.session.scalars(select(EmailCode.code_hash))),
        "sessions": set(db.session.scalars(select(SsoSession.id))),
        "authorization_codes": set(db.session.scalars(select(AuthorizationCode.code_hash))),
        "tokens": set(db.session.scalars(select(Token.access_token_hash))),
        "grants": set(db.session.scalars(select(Grant.id))),
        "revoked_tokens": set(db.session.scalars(select(RevokedToken.token_hash))),
        "used_captchas": set(db.session.scalars(select(UsedCaptcha.signature))),
        "used_client_assertions": set(db.session.scalars(select(UsedClientAssertion.id))),
        "used_dpop_proofs": set(db.session.scalars(select(UsedDpopProof.id))),
        "pushed_authorization_requests": set(db.session.scalars(select(PushedAuthorizationRequest.id))),
        "outbox": set(db.session.scalars(select(OutboxMail.recipient))),
        "backchannel_outbox": set(db.session.scalars(select(OutboxLogout.session_id))),
    }


EXPECTED_COUNTS = {"flows": 1, "email_codes": 1, "sessions": 2, "authorization_codes": 2, "tokens": 3, "grants": 4,
                   "revoked_tokens": 1, "used_captchas": 1, "used_client_assertions": 1, "used_dpop_proofs": 1,
                   "pushed_authorization_requests": 2, "outbox": 2,
                   "backchannel_outbox": 2, "sign_in_sources": 0}


@pytest.fixture
def seeded(app):
    client = make_client(app, name="Portal")
    person = make_account(app, "anna@example.com", "correct horse battery staple")
    clock.freeze(NOW)
    with app.app_context():
        db.session.execute(db.delete(OutboxMail))  # the fixtures' own mail is not part of the picture
        db.session.commit()
        keep = seed(app, person["sub"], client["client_id"])
        audit_rows = db.session.scalar(select(func.count()).select_from(AuditEvent))
    return keep, audit_rows


@pytest.mark.parametrize("batch_size", [1000, 1])
def test_prune_deletes_exactly_what_has_expired(app, seeded, batch_size):
    keep, audit_rows = seeded
    app.config["PRUNE_BATCH_SIZE"] = batch_size
    result = cli_runner(app).invoke(prune_command, ["--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == EXPECTED_COUNTS
    with app.app_context():
        assert remaining() == keep
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows


def test_prune_prints_how_many_of_each_and_a_second_run_finds_nothing(app, seeded):
    first = cli_runner(app).invoke(prune_command, [])
    assert first.exit_code == 0, first.output
    assert "tokens: 3" in first.output.splitlines() and "sessions: 2" in first.output.splitlines()
    again = cli_runner(app).invoke(prune_command, ["--json"])
    assert set(json.loads(again.output).values()) == {0}


def test_what_stays_goes_once_it_has_expired(app, seeded):
    keep, _ = seeded
    clock.freeze(NOW + 31 * DAY)
    with app.app_context():
        db.session.execute(db.update(SsoSession).values(expires_at=NOW + 31 * DAY - MIN))
        db.session.commit()
    result = cli_runner(app).invoke(prune_command, ["--json"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        left = remaining()
    assert left["tokens"] == set() and left["authorization_codes"] == set() and left["sessions"] == set()
    assert left["grants"] == set()
    assert left["flows"] == set() and left["email_codes"] == set()
    assert left["outbox"] == {"mail-queued-old@example.com"}  # queued mail is never pruned
    assert left["backchannel_outbox"] == {"logout-queued-old"}  # nor a logout still owed


def test_only_one_instance_prunes_at_a_time_on_postgresql(app, seeded):
    from sqlalchemy import create_engine, text

    from idp.services.prune import ADVISORY_LOCK_KEY

    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite serves one machine; the advisory lock is PostgreSQL's")
    other = create_engine(app.config["DATABASE_URL"])
    try:
        with other.connect() as instance_b:
            assert instance_b.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar()
            busy = cli_runner(app).invoke(prune_command, ["--json"])
            assert json.loads(busy.stdout) == {"skipped": True}
            with app.app_context():
                assert remaining()["tokens"] != seeded[0]["tokens"]  # nothing was deleted
            instance_b.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        done = cli_runner(app).invoke(prune_command, ["--json"])
        assert json.loads(done.stdout) == EXPECTED_COUNTS
    finally:
        other.dispose()



def test_a_prune_that_is_stopped_begins_no_further_kind(app, seeded):
    """The worker that runs the prune loop is ending: the kind begun is pruned, no other."""
    from idp.services import prune

    with app.app_context():
        before = remaining()
        counts = prune.prune(stop=SetAfter(2))
        after = remaining()
    assert counts == {"email_codes": EXPECTED_COUNTS["email_codes"]}
    assert after["email_codes"] != before["email_codes"]
    assert {kind: rows for kind, rows in after.items() if kind != "email_codes"} == {
        kind: rows for kind, rows in before.items() if kind != "email_codes"}
