"""The mail outbox: queue in the caller's transaction, deliver over SMTP with backoff."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import socket
import time
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_babel import force_locale
from flask_mail import Message
from sqlalchemy import or_, select, update

from .. import clock, timezones
from ..extensions import db, mail
from ..models import OutboxMail
from ..telemetry import metrics
from ..unit_of_work import after_commit

log = logging.getLogger(__name__)

CLAIM_SECONDS = 60


def render(kind: str, locale: str | None = None, **context) -> tuple[str, str, str]:
    """Mail ``kind`` (templates/mail/<kind>.subject.txt, .txt, .html) in ``locale``:
    (subject, text, html)."""
    locale = locale if locale in current_app.config["LANGUAGES"] else current_app.config["LANGUAGES"][0]
    context.setdefault("product", current_app.config["PRODUCT_NAME"])
    context.setdefault("issuer", current_app.config["ISSUER"])
    context["mail_locale"] = locale
    # Times in mail are in the provider's zone, named: never the zone of whoever caused the mail.
    with force_locale(locale), timezones.shown_in(timezones.provider_zone()):
        subject = render_template(f"mail/{kind}.subject.txt", **context).strip()
        text = render_template(f"mail/{kind}.txt", **context)
        html = render_template(f"mail/{kind}.html", **context)
    return subject, text, html


def queue(recipient: str, kind: str, locale: str | None = None, **context) -> OutboxMail:
    """Render a mail and add it to the outbox in the current transaction (counted once committed)."""
    subject, text, html = render(kind, locale, **context)
    item = OutboxMail(recipient=recipient, subject=subject, text=text, html=html, kind=kind)
    db.session.add(item)
    after_commit(lambda: metrics.mail("queued", kind))  # queued once it is written
    return item


def _claim(now: dt.datetime, limit: int) -> list[int]:
    """Mark up to ``limit`` due mails as ours for a while, so two deliverers never send one twice."""
    ids = list(
        db.session.scalars(
            select(OutboxMail.id)
            .where(
                OutboxMail.status == "queued",
                OutboxMail.next_attempt_at <= now,
                or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until <= now),
            )
            .order_by(OutboxMail.id)
            .limit(limit)
        )
    )
    claimed = []
    for mail_id in ids:
        result = db.session.execute(
            update(OutboxMail)
            .where(
                OutboxMail.id == mail_id,
                OutboxMail.status == "queued",
                or_(OutboxMail.claimed_until.is_(None), OutboxMail.claimed_until <= now),
            )
            .values(claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS))
        )
        if result.rowcount:
            claimed.append(mail_id)
    db.session.commit()
    return claimed


def message_id(item: OutboxMail) -> str:
    """The same Message-ID at every attempt to deliver ``item``, under the issuer's domain,
    so a relay or a mailbox recognises a retried delivery as the same mail."""
    host = urlsplit(current_app.config["ISSUER"]).hostname or "localhost"
    return f"<outbox.{item.id}.{item.created_at:%Y%m%d%H%M%S%f}@{host}>"


def _release(ids: list[int], now: dt.datetime) -> None:
    """Give up our claim (``_claim`` at ``now``) on mails not sent yet: the next round, here or
    elsewhere, takes them at once. A claim that has run out and been taken by another is not ours."""
    ours = now + dt.timedelta(seconds=CLAIM_SECONDS)
    db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id.in_(ids), OutboxMail.status == "queued", OutboxMail.claimed_until == ours)
        .values(claimed_until=None)
    )
    db.session.commit()


def deliver_due(limit: int = 50, stop=None) -> tuple[int, int]:
    """Send what is due. Returns (sent, failed). Without an SMTP server nothing is sent. Once
    ``stop`` (a threading.Event) is set, no further mail is begun: the worker running the loop
    is ending."""
    if not current_app.config["MAIL_SERVER"]:
        return 0, 0
    now = clock.now()
    sent = failed = 0
    claimed = _claim(now, limit)
    for index, mail_id in enumerate(claimed):
        if stop is not None and stop.is_set():
            _release(claimed[index:], now)
            break
        item = db.session.get(OutboxMail, mail_id)
        msg = Message(
            subject=item.subject,
            recipients=[item.recipient],
            body=item.text,
            html=item.html,
            sender=current_app.config["MAIL_DEFAULT_SENDER"],
        )
        msg.msgId = message_id(item)
        previous_timeout = socket.getdefaulttimeout()
        try:
            # Flask-Mail opens its SMTP connection without a timeout; a hanging relay
            # must not stall the delivery loop.
            socket.setdefaulttimeout(current_app.config["MAIL_TIMEOUT"])
            mail.send(msg)
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            failed += 1
            metrics.mail("failed", item.kind)
            item.attempts += 1
            item.last_error = str(exc)[:500]
            item.claimed_until = None
            if item.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
                item.status = "abandoned"
                item.text, item.html = "", None
                log.error("mail %s to %s abandoned after %s attempts: %s", item.id, item.recipient, item.attempts, exc)
            else:
                backoff = min(current_app.config["MAIL_RETRY_BASE"] * 2 ** (item.attempts - 1), 3600)
                item.next_attempt_at = clock.now() + dt.timedelta(seconds=backoff)
                log.warning("mail %s to %s not sent (attempt %s), retry in %ss: %s", item.id, item.recipient, item.attempts, backoff, exc)
        else:
            sent += 1
            metrics.mail("sent", item.kind)
            item.attempts += 1
            item.status = "sent"
            item.sent_at = clock.now()
            item.claimed_until = None
            # Codes and links do not stay readable in the database once delivered.
            item.text, item.html = "", None
        finally:
            socket.setdefaulttimeout(previous_timeout)
        db.session.commit()
    return sent, failed


def deliver_forever(stop=None) -> None:
    """The delivery loop of `idp serve` and `idp mail deliver --loop`: mail, then back-channel logouts."""
    interval = current_app.config["MAIL_POLL_INTERVAL"]
    while stop is None or not stop.is_set():
        try:
            deliver_due(stop=stop)
        except Exception:  # a database hiccup must not end the loop
            log.exception("mail delivery round failed")
            db.session.rollback()
        finally:
            db.session.remove()
        if stop is not None and stop.is_set():
            return
        deliver_logouts()
        if stop is not None:
            stop.wait(interval)
        else:
            time.sleep(interval)


def deliver_logouts() -> None:
    """The back-channel logout round of the same loop (services.backchannel), after the mail."""
    from . import backchannel

    try:
        backchannel.deliver_due()
    except Exception:  # a database hiccup must not end the loop
        log.exception("back-channel logout delivery round failed")
        db.session.rollback()
    finally:
        db.session.remove()


def dev_mailbox(limit: int = 100) -> list[OutboxMail]:
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)))
