"""Mail goes through the outbox to a real SMTP server; a relay that is down loses nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import clock
from idp.extensions import db
from idp.models import OutboxMail
from idp.services import mailer
from tests.smtp_sink import Sink, free_port, text_of


@pytest.fixture
def sink():
    s = Sink().start()
    yield s
    s.stop()


def queue_code(app, to="anna@example.com", locale="en"):
    with app.app_context():
        mailer.queue(to, "email_code", locale, code="123456", minutes=10, name="Anna")
        db.session.commit()


def deliver(app):
    with app.app_context():
        return mailer.deliver_due()


def statuses(app):
    with app.app_context():
        return [(m.status, m.attempts) for m in db.session.scalars(select(OutboxMail).order_by(OutboxMail.id))]


@pytest.fixture
def smtp_app(app, sink):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port)
    from idp.extensions import mail

    mail.init_app(app)
    return app


def test_queued_mail_is_delivered_over_smtp(smtp_app, sink):
    queue_code(smtp_app)
    assert deliver(smtp_app) == (1, 0)
    (message,) = sink.wait_for("anna@example.com")
    assert "123456" in text_of(message)
    assert message.get_body(preferencelist=("html",)) is not None
    assert statuses(smtp_app) == [("sent", 1)]
    assert deliver(smtp_app) == (0, 0)  # never twice


def test_relay_down_keeps_the_mail_and_retries_with_backoff(smtp_app, sink):
    """Mails queued at different moments while the relay is down, some tried more often than
    others: once it is back each arrives, exactly once. The outbox promises no order across
    different backoffs: a mail that failed more often waits longer for its next try."""
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    sink.stop()
    queue_code(smtp_app, to="anna@example.com")
    assert deliver(smtp_app) == (0, 1)
    assert statuses(smtp_app) == [("queued", 1)]
    assert deliver(smtp_app) == (0, 0)  # not due yet: backoff
    clock.advance(seconds=6)
    queue_code(smtp_app, to="bob@example.com")
    assert deliver(smtp_app) == (0, 2)  # anna's second try (next in 10 s), bob's first (next in 5 s)
    queue_code(smtp_app, to="carla@example.com")
    queue_code(smtp_app, to="dirk@example.com")
    assert statuses(smtp_app) == [("queued", 2), ("queued", 1), ("queued", 0), ("queued", 0)]

    sink.start()
    clock.advance(seconds=6)
    assert deliver(smtp_app) == (3, 0)  # bob, carla and dirk; anna's retry is not due yet
    assert deliver(smtp_app) == (0, 0)
    clock.advance(seconds=5)
    assert deliver(smtp_app) == (1, 0)
    clock.advance(hours=2)
    assert deliver(smtp_app) == (0, 0)  # never twice
    assert statuses(smtp_app) == [("sent", 3), ("sent", 2), ("sent", 1), ("sent", 1)]
    recipients = ("anna@example.com", "bob@example.com", "carla@example.com", "dirk@example.com")
    for to in recipients:
        sink.wait_for(to)
    assert sorted(str(m["To"]) for m in sink.messages) == sorted(recipients)
    assert len({str(m["Message-ID"]) for m in sink.messages}) == len(recipients)


def test_mail_is_abandoned_after_max_attempts(smtp_app, sink):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    smtp_app.config.update(MAIL_MAX_ATTEMPTS=3, MAIL_PORT=free_port())
    from idp.extensions import mail

    mail.init_app(smtp_app)
    queue_code(smtp_app)
    for _ in range(3):
        deliver(smtp_app)
        clock.advance(hours=2)
    assert statuses(smtp_app) == [("abandoned", 3)]


def test_mail_language(smtp_app, sink):
    queue_code(smtp_app, locale="nl")
    queue_code(smtp_app, to="bob@example.com", locale="en")
    deliver(smtp_app)
    assert "Your verification code" in sink.wait_for("bob@example.com")[0]["Subject"]
    assert "Your verification code" not in sink.wait_for("anna@example.com")[0]["Subject"]


def test_without_smtp_nothing_is_sent_and_dev_mailbox_shows_it(app, client):
    queue_code(app)
    assert deliver(app) == (0, 0)
    page = client.get("/dev/mailbox")
    assert page.status_code == 200 and b"123456" in page.data


@pytest.mark.config(ENV="production")
def test_dev_mailbox_is_absent_in_production(app, client):
    assert client.get("/dev/mailbox").status_code == 404


def test_flows_complete_while_the_relay_is_down(smtp_app, sink, cli):
    """The invitation is created with the relay down; its mail goes out when the relay returns."""
    import json

    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    sink.stop()
    data = json.loads(cli.invoke(args=["invitations", "create", "--email", "klant@example.com",
                                       "--administration", "Bakkerij", "--json"]).output)
    assert deliver(smtp_app) == (0, 1)
    sink.start()
    clock.advance(minutes=1)
    assert deliver(smtp_app) == (1, 0)
    (message,) = sink.wait_for("klant@example.com")
    assert data["invitation_url"] in text_of(message)


class FlakySink(Sink):
    """Answers the first DATA with a temporary failure (451), then accepts: a relay that hiccups."""

    def __init__(self):
        super().__init__()
        self.attempts: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        import email as email_lib

        message = email_lib.message_from_bytes(envelope.content, policy=email_lib.policy.default)
        self.attempts.append(str(message["Message-ID"]))
        if len(self.attempts) == 1:
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_retried_mail_keeps_its_message_id_under_the_issuers_domain(app):
    clock.freeze(dt.datetime(2026, 11, 23, 9, 0))
    flaky = FlakySink().start()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=flaky.port)
        from idp.extensions import mail

        mail.init_app(app)
        queue_code(app)
        assert deliver(app) == (0, 1)
        clock.advance(seconds=6)
        assert deliver(app) == (1, 0)
        flaky.wait_for("anna@example.com")
    finally:
        flaky.stop()
    first, second = flaky.attempts
    assert first == second
    assert first.startswith("<") and first.endswith("@idp.test>"), first
