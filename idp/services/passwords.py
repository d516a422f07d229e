"""Argon2id password hashing with OWASP's parameters, and equal-time misses."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)

# Verified against when the account does not exist, so a miss costs the same time.
_DUMMY_HASH = HASHER.hash("not a real password, only for equal timing")


# One hash at a time per process: a hash's 19 MiB block is then used again by the next one, rather
# than one block kept per thread or mapped afresh each time (ops.serving._tune_malloc). Workers are
# processes, so a server hashes as many passwords at once as it has workers: one per core.
_ONE_AT_A_TIME = threading.Lock()


def hash_password(password: str) -> str:
    with _ONE_AT_A_TIME:
        return HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; always spends one Argon2 verification."""
    try:
        with _ONE_AT_A_TIME:
            return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return HASHER.check_needs_rehash(stored_hash)
