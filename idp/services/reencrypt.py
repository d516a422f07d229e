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


@dataclass(frozen=True)
class Kind:
    """One kind of encrypted value: the rows that may hold one, how to read and write it there,
    and its codec (is it current, decrypt, encrypt)."""

    key_column: object
    where: Callable[[], object]
    get: Callable
    put: Callable
    codec: tuple[Callable, Callable, Callable]


def _put_pending(flow, value) -> None:
    flow.data = {**flow.data, "pending_totp": value}


KINDS = {
    "totp_secrets": Kind(Account.id, lambda: Account.totp_secret.is_not(None), lambda a: a.totp_secret,
                         lambda a, v: setattr(a, "totp_secret", v), _bytes_codec(totp.PURPOSE)),
    "signing_keys": Kind(SigningKey.kid, lambda: SigningKey.private_jwk.is_not(None), lambda k: k.private_jwk,
                         lambda k, v: setattr(k, "private_jwk", v), _text_codec(keys.PURPOSE)),
    # A TOTP enrolment under way keeps its new secret in the flow until it is confirmed.
    "pending_totp_enrolments": Kind(Flow.id, lambda: Flow.expires_at > clock.now(),
                                    lambda f: (f.data or {}).get("pending_totp"), _put_pending,
                                    _text_codec(PENDING_TOTP)),
}


def reencrypt_all(batch_size: int = 500) -> dict[str, dict[str, int]]:
    """Re-encrypt TOTP secrets, signing keys and pending TOTP enrolments of live flows
    under the current secret; returns counts per kind of value."""
    result = {}
    for name, kind in KINDS.items():
        counts = Counts()
        for rows in _batches(kind.key_column, kind.where(), batch_size):
            for row in rows:
                value = kind.get(row)
                if value:
                    moved = _move(counts, value, *kind.codec)
                    if moved != value:
                        kind.put(row, moved)
        result[name] = counts.as_dict()
    db.session.commit()
    keys.clear_cache()
    return result
