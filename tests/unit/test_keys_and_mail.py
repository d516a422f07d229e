"""Key rotation and mail delivery backoff at a frozen clock."""

from __future__ import annotations

import socket

import pytest

from idp import clock
from idp.extensions import db
from idp.services import keys, mailer

from ..helpers import SetAfter


def kids():
    keys.clear_cache()
    return [k["kid"] for k in keys.public_jwks()["keys"]]


def test_rotation_keeps_the_old_key_published_until_its_tokens_expired(ctx):
    keys.ensure()
    first = keys.signing_key()[0]
    new = keys.rotate()
    assert keys.signing_key()[0] == new.kid != first
    assert set(kids()) == {first, new.kid}
    clock.advance(seconds=3600 + 300 - 1)  # the longest token lifetime and a margin
    assert first in kids()
    clock.advance(seconds=1)
    assert kids() == [new.kid]


def test_keys_are_parsed_once_not_per_request_and_a_rotation_is_seen(ctx, monkeypatch):
    keys.ensure()
    monkeypatch.setattr(keys, "CACHE_SECONDS", -1)  # every call reads the keys from the database again
    kid, private = keys.signing_key()
    published = keys.public_keyset()
    assert keys.signing_key() == (kid, private) and keys.signing_key()[1] is private
    assert keys.public_keyset() is published and published.get_by_kid(kid) is not None
    new = keys.rotate()
    assert keys.signing_key()[0] == new.kid and keys.signing_key()[1] is not private
    assert {k.kid for k in keys.public_keyset()} == {kid, new.kid}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relay_down(app, ctx):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=_closed_port(), MAIL_MAX_ATTEMPTS=4, MAIL_RETRY_BASE=5)
    item = mailer.queue("anna@example.com", "email_code", "en", code="123456", minutes=10, name="Anna")
    db.session.commit()
    return item


def test_a_failed_delivery_backs_off_doubling(relay_down):
    waits = []
    for _ in range(3):
        assert mailer.deliver_due() == (0, 1)
        db.session.refresh(relay_down)
        waits.append((relay_down.next_attempt_at - clock.now()).total_seconds())
        assert mailer.deliver_due() == (0, 0)  # not due yet
        clock.advance(seconds=waits[-1])
    assert waits == [5, 10, 20]


def test_a_mail_is_abandoned_after_the_last_attempt(relay_down):
    for _ in range(4):
        mailer.deliver_due()
        clock.advance(hours=1)
    db.session.refresh(relay_down)
    assert relay_down.status == "abandoned" and relay_down.attempts == 4 and relay_down.text == ""
    assert mailer.deliver_due() == (0, 0)


def test_a_round_that_is_stopped_begins_no_further_mail_and_gives_the_rest_back(relay_down):
    from idp.models import OutboxMail

    others = [mailer.queue(f"bob{i}@example.com", "email_code", "en", code="123456", minutes=10, name="Bob")
              for i in range(2)]
    db.session.commit()
    assert mailer.deliver_due(stop=SetAfter(2)) == (0, 1)  # the first mail was tried, then the stop came
    db.session.expire_all()
    tried = db.session.get(OutboxMail, relay_down.id)
    assert tried.attempts == 1
    for item in others:
        left = db.session.get(OutboxMail, item.id)
        assert (left.status, left.attempts, left.claimed_until) == ("queued", 0, None)
    # Given back, not left claimed for a minute: the next round (here or on another instance) takes them.
    assert mailer.deliver_due() == (0, 2)
