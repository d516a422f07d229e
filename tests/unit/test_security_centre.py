"""The security centre's services without a request, at a frozen clock: granted apps and
withdrawing them, sessions seen and ended, the events in words, the devices, the name and
address changes and the e-mail change flow."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from idp import clock
from idp.errors import (AppNotFound, EmailInUse, FlowNotFound, WrongCurrentPassword, InvalidEmailCode, InvalidName,
                        SameEmail, SessionNotFound)
from idp.extensions import db
from idp.flows import EmailChangeFlow
from idp.models import AuditEvent, Client, Consent, EmailCode, Grant, OutboxMail, Token
from idp.models.base import token_hash
from idp.services import (accounts, audit, consents, granted_apps, security_centre, security_events, sessions,
                          tokens, user_agents)
from tests.helpers import CTX, T0

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def client(name: str, first_party: bool = False) -> Client:
    row = Client(id=secrets.token_hex(8), name=name, redirect_uris=[], grant_types=["authorization_code", "refresh_token"],
                 scope="openid profile email offline_access administrations",
                 token_endpoint_auth_method="client_secret_basic", first_party=first_party)
    db.session.add(row)
    db.session.flush()
    return row


def issue(account, client_: Client, scope: str, *, grant: Grant | None = None, refresh: bool = True) -> Token:
    """A token as the token endpoint saves it (a code exchange, or a refresh of ``grant``)."""
    grant = grant or Grant(client_id=client_.id, account_id=account.id)
    token = Token(client_id=client_.id, account_id=account.id, grant=grant, scope=scope,
                  access_token_hash=token_hash(secrets.token_hex(16)), issued_at=clock.now(), expires_in=3600,
                  refresh_token_hash=token_hash(secrets.token_hex(16)) if refresh else None,
                  refresh_expires_at=clock.now() + dt.timedelta(days=30) if refresh else None)
    db.session.add(token)
    db.session.flush()
    return token


# -- apps --------------------------------------------------------------------------------------


def test_granted_apps_first_granted_and_last_used(account):
    scan, portal = client("Scan service"), client("Portal", first_party=True)
    consents.give(account, scan.id, "openid email offline_access", ip=None)
    first = issue(account, scan, "openid email offline_access")
    clock.advance(hours=1)
    issue(account, portal, "openid profile", refresh=False)
    clock.advance(minutes=30)
    first.refresh_used_at = clock.now()
    issue(account, scan, "openid email offline_access", grant=first.grant)  # a refresh
    apps = granted_apps.for_account(account)
    assert [a.name for a in apps] == ["Portal", "Scan service"]
    own, other = apps
    assert other.scopes == {"openid", "email", "offline_access"} and not other.first_party
    assert other.first_granted == T0 and other.last_used == T0 + dt.timedelta(hours=1, minutes=30)
    assert own.first_party and own.first_granted == own.last_used == T0 + dt.timedelta(hours=1)
    assert own.scopes == {"openid", "profile"}
    # Half an hour later the portal's access token has expired, and it had no refresh token.
    clock.advance(minutes=31)
    assert [a.name for a in granted_apps.for_account(account)] == ["Scan service"]


def test_a_consent_without_tokens_still_lists_the_app(account):
    scan = client("Scan service")
    consents.give(account, scan.id, "openid email", ip=None)
    (app,) = granted_apps.for_account(account)
    assert app.first_granted == T0 and app.last_used is None and app.scopes == {"openid", "email"}


def test_revoke_ends_consent_grants_and_tokens(account):
    scan = client("Scan service")
    consents.give(account, scan.id, "openid email offline_access", ip="192.0.2.1")
    token = issue(account, scan, "openid email offline_access")
    pending = Grant(client_id=scan.id, account_id=account.id)  # a code not redeemed yet
    db.session.add(pending)
    other = accounts.create_account("bob@example.com", "another password")
    theirs = issue(other, scan, "openid email")
    clock.advance(minutes=1)
    granted_apps.revoke(account, scan.id, ip="192.0.2.1")
    for row in (token, token.grant, pending, theirs, theirs.grant):
        db.session.refresh(row)
    assert token.revoked_at == clock.now() and token.grant.revoked_at == clock.now()
    assert pending.revoked_at == clock.now()
    assert not token.is_refresh_usable() and token.is_revoked()
    assert db.session.scalars(select(Consent)).all() == []
    assert theirs.revoked_at is None and theirs.grant.revoked_at is None
    assert granted_apps.for_account(account) == []
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "app.revoked"))
    assert event.detail == {"client": scan.id, "consents_withdrawn": 1, "tokens_revoked": 1}
    with pytest.raises(AppNotFound):
        granted_apps.revoke(account, scan.id, ip=None)
    with pytest.raises(AppNotFound):
        granted_apps.revoke(account, "unknown", ip=None)


def test_has_connection_is_a_usable_refresh_token(account):
    scan = client("Scan service")
    assert not tokens.has_connection(account.id, scan.id)
    issue(account, scan, "openid", refresh=False)
    assert not tokens.has_connection(account.id, scan.id)
    token = issue(account, scan, "openid offline_access")
    assert tokens.has_connection(account.id, scan.id)
    clock.advance(days=31)
    assert not tokens.has_connection(account.id, scan.id)  # expired
    clock.advance(days=-31)
    tokens.revoke_family(token.grant_id)
    assert not tokens.has_connection(account.id, scan.id)


# -- sessions ----------------------------------------------------------------------------------


def test_seen_writes_at_most_once_per_interval(account):
    session = sessions.start(account, ["pwd", "otp", "mfa"], ip="192.0.2.1", user_agent=FIREFOX)
    assert session.last_seen_at == T0
    clock.advance(minutes=4, seconds=59)
    sessions.seen(session)
    assert session.last_seen_at == T0
    clock.advance(seconds=1)
    sessions.seen(session)
    assert session.last_seen_at == T0 + dt.timedelta(minutes=5)


def test_end_own_and_end_others(account):
    here = sessions.start(account, ["pwd"], ip="192.0.2.1", user_agent=FIREFOX)
    clock.advance(minutes=1)
    there = sessions.start(account, ["pwd"], ip="192.0.2.2", user_agent=None)
    third = sessions.start(account, ["pwd"], ip="192.0.2.3", user_agent=None)
    other = accounts.create_account("bob@example.com", "another password")
    theirs = sessions.start(other, ["pwd"], ip=None, user_agent=None)
    db.session.flush()
    assert set(sessions.active_for(account)) == {here, there, third}
    with pytest.raises(SessionNotFound):
        sessions.end_own(account, theirs.handle, current=here, ip=None)
    with pytest.raises(SessionNotFound):
        sessions.end_own(account, there.id, current=here, ip=None)  # the sid itself is no handle
    assert sessions.end_own(account, there.handle, current=here, ip=None) is False
    assert there.ended_at == clock.now() and theirs.ended_at is None
    with pytest.raises(SessionNotFound):
        sessions.end_own(account, there.handle, current=here, ip=None)  # stale
    assert sessions.end_others(account, current=here, ip=None) == 1
    assert sessions.active_for(account) == [here]
    assert sessions.end_own(account, here.handle, current=here, ip=None) is True
    ended = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "session.ended")).all()
    assert len(ended) == 3 and {e.actor for e in ended} == {account.id}


def test_overview_puts_this_browser_first(account):
    here = sessions.start(account, ["pwd"], ip="192.0.2.1", user_agent=FIREFOX)
    clock.advance(minutes=10)
    sessions.start(account, ["pwd"], ip="192.0.2.2", user_agent="curl/8.0")
    db.session.flush()
    shown = security_centre.overview(account, current=here).sessions
    assert [s.current for s in shown] == [True, False]
    assert str(shown[0].device) == "Firefox 133 · Windows 10" and str(shown[1].device) == "curl 8"
    assert shown[0].started == T0 and shown[1].last_seen == T0 + dt.timedelta(minutes=10)


def test_user_agents():
    assert user_agents.describe(FIREFOX) == user_agents.Device("Firefox 133", "Windows 10")
    assert str(user_agents.describe(None)) == "" and str(user_agents.describe("")) == ""
    assert user_agents.describe("x" * 10_000).browser is None


# -- events ------------------------------------------------------------------------------------


@pytest.mark.config(SECURITY_EVENTS_PER_PAGE=2)
def test_events_in_words_newest_first_paged(account):
    scan = client("Scan service")
    audit.record("login.password", account=account, outcome="failure", ip="192.0.2.9")
    audit.record("keys.rotated", account=account)  # not the person's security event
    audit.record("login.password", account=account)  # a step of the sign-in below
    sessions.start(account, ["pwd", "otp", "mfa"], ip="192.0.2.1", user_agent=None)
    audit.record("app.revoked", actor=account.id, account=account, client=scan.id)
    db.session.flush()
    with force_locale("en"):
        first = security_events.page_for(account, 1)
        second = security_events.page_for(account, 2)
    assert [e.name for e in first.events] == ["Access of an application withdrawn", "Signed in"]
    assert first.events[0].app == "Scan service" and first.has_older
    assert first.events[1].method == "Password + Authenticator app" and first.events[1].succeeded
    (refused,) = second.events
    assert refused.name == "Sign-in: wrong password" and not refused.succeeded and refused.method == "Password"
    assert refused.ip == "192.0.2.9" and not second.has_older
    assert security_events.page_for(account, 3).events == []


# -- name and address --------------------------------------------------------------------------


def test_change_name(account):
    accounts.change_name(account, "  Anna \t de   Vries ", ip=None)
    assert account.name == "Anna de Vries"
    accounts.change_name(account, "Anna de Vries", ip=None)  # the same: nothing to record
    assert len(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "name.changed")).all()) == 1
    for bad in ("", " ", "a" * 201, "Anna\x00", "Anna\u202e"):
        with pytest.raises(InvalidName):
            accounts.change_name(account, bad, ip=None)
    assert account.name == "Anna de Vries"


def test_change_email_refuses_an_address_in_use(account):
    accounts.create_account("bob@example.com", "another password")
    with pytest.raises(EmailInUse):
        accounts.change_email(account, "bob@example.com", ip=None, locale="en")
    assert account.email == "anna@example.com"


def _code(email: str) -> str:
    import re

    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.recipient == email).order_by(OutboxMail.id.desc()))
    return re.search(r"\b(\d{6})\b", mail.text).group(1)


def test_email_change_flow(account):
    with pytest.raises(WrongCurrentPassword):
        EmailChangeFlow.start(account, {"email": "new@example.com", "current_password": "wrong"}, CTX)
    with pytest.raises(SameEmail):
        EmailChangeFlow.start(account, {"email": "ANNA@example.com", "current_password": "secret password"}, CTX)
    flow = EmailChangeFlow.start(account, {"email": "New@Example.com", "current_password": "secret password"}, CTX)
    assert flow.state == "code" and flow.email == "new@example.com"
    code = db.session.scalar(select(EmailCode).where(EmailCode.flow_id == flow.id))
    assert code.purpose == "change_email" and code.account_id == account.id
    with pytest.raises(FlowNotFound):
        EmailChangeFlow.load_for(flow.id, [flow.id], accounts.create_account("bob@example.com", "another password"))
    assert EmailChangeFlow.load_for(flow.id, [flow.id], account).id == flow.id
    with pytest.raises(InvalidEmailCode):
        flow.advance("code", {"email_code": "12345"}, CTX)
    assert account.email == "anna@example.com"
    assert flow.advance("code", {"email_code": _code("new@example.com")}, CTX) == "done"
    assert account.email == "new@example.com" and account.email_verified
    notice = db.session.scalar(select(OutboxMail).where(OutboxMail.recipient == "anna@example.com"))
    assert notice.kind == "email_changed"


def test_email_change_flow_expires(account):
    flow = EmailChangeFlow.start(account, {"email": "new@example.com", "current_password": "secret password"}, CTX)
    code = _code("new@example.com")
    clock.advance(minutes=31)
    from idp.errors import FlowExpired

    with pytest.raises(FlowExpired):
        flow.advance("code", {"email_code": code}, CTX)
    assert account.email == "anna@example.com"
