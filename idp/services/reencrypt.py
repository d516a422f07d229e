"""Moving every encrypted value at rest to the current secret, after a secret rotation.

A batch of rows per transaction, in primary-key order, so no table is locked for long and
a second run (or one interrupted half-way) only finishes what is left. A value no
configured secret opens is counted, never overwritten: it was made under a secret that
is gone, and only its owner can say what to do (re-enrol TOTP, rotate the signing key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import select

from .. import clock
from ..extensions import db
from ..models import Account, Flow, SigningKey
from . import crypto, keys, totp

PENDING_TOTP = "pending-totp"


@dataclass
class Counts:
    reencrypted: int = 0
    current: int = 0
    undecryptable: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"reencrypted": self.reencrypted, "current": self.current, "undecryptable": self.undecryptable}


def _batches(column, where, batch_size: int) -> Iterator[list]:
    model = column.class_
    after = None
    while True:
        query = select(model).where(where).order_by(column).limit(batch_size)
        if after is not None:
            query = query.where(column > after)
        rows = list(db.session.scalars(query))
        if not rows:
            return
        yield rows
        db.session.commit()
        after = getattr(rows[-1], column.key)


def _move(counts: Counts, value, is_current: Callable, decrypt: Callable, encrypt: Callable):
    """``value`` under the current secret (or unchanged), counting what happened."""
    if is_current(value):
        counts.current += 1
        return value
    try:
        plaintext = decrypt(value)
    except crypto.UndecryptableError:
        counts.undecryptable += 1
        return value
    counts.reencrypted += 1
    return encrypt(plaintext)


def _bytes_codec(purpose: str):
    return (lambda v: crypto.is_current(v, purpose), lambda v: crypto.decrypt(v, purpose),
            lambda p: crypto.encrypt(p, purpose))


def _text_codec(purpose: str):
    return (lambda v: crypto.is_current_text(v, purpose), lambda v: crypto.decrypt_text(v, purpose),
            lambda p: crypto.encrypt_text(p, purpose))


def reencrypt_all(batch_size: int = 500) -> dict[str, dict[str, int]]:
    """Re-encrypt TOTP secrets, signing keys and pending TOTP enrolments of live flows
    under the current secret; returns counts per kind of value."""
    result = {}

    counts = Counts()
    codec = _bytes_codec(totp.PURPOSE)
    for rows in _batches(Account.id, Account.totp_secret.is_not(None), batch_size):
        for account in rows:
            account.totp_secret = _move(counts, account.totp_secret, *codec)
    result["totp_secrets"] = counts.as_dict()

    counts = Counts()
    codec = _text_codec(keys.PURPOSE)
    for rows in _batches(SigningKey.kid, SigningKey.private_jwk.is_not(None), batch_size):
        for key in rows:
            key.private_jwk = _move(counts, key.private_jwk, *codec)
    result["signing_keys"] = counts.as_dict()

    # A TOTP enrolment under way keeps its new secret in the flow until it is confirmed.
    counts = Counts()
    codec = _text_codec(PENDING_TOTP)
    for rows in _batches(Flow.id, Flow.expires_at > clock.now(), batch_size):
        for flow in rows:
            pending = (flow.data or {}).get("pending_totp")
            if pending:
                moved = _move(counts, pending, *codec)
                if moved != pending:
                    flow.data = {**flow.data, "pending_totp": moved}
    result["pending_totp_enrolments"] = counts.as_dict()

    db.session.commit()
    keys.clear_cache()
    return result
