"""Authorization codes on the tables, not the entities: a code and the grant of the family it
starts are written in two INSERTs when the authorization answers (``save``); a presented code
is read with its family and its person in one SELECT of columns (``find``) and claimed by one
conditional UPDATE (``claim``), so of two redemptions racing with the same code only one wins,
on SQLite (its write lock) as on PostgreSQL (the row lock, the condition read again after it).
The ORM's loading, tracking and flush would cost the code exchange more than its statements.

On PostgreSQL the read and the claim each run on a kept connection in autocommit
(``unit_of_work.read_row`` and ``committed_alone``) while the token request's session holds
nothing, as it does not before them: a round trip each, where a transaction of the session costs
four (BEGIN, the read, the claim, COMMIT; and a ping for a connection that waited long). The
read outside the claim's transaction decides nothing the claim does not check again: the claim
is conditional."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import bindparam, insert, select, update

from .. import clock
from ..models import Account, AuthorizationCode, Grant
from ..models.base import new_id
from ..models.oauth import AccountRow, FamilyRow, PresentedCode
from ..unit_of_work import committed_alone, execute, kept, read_row
from .crypto import token_hash

_CODES = AuthorizationCode.__table__
_GRANTS = Grant.__table__
_ACCOUNTS = Account.__table__
_INSERT_GRANT = insert(_GRANTS)
_INSERT_CODE = insert(_CODES)
_FIND = (
    select(*(_CODES.c[name] for name in PresentedCode.COLUMNS),
           *(_GRANTS.c[name] for name in FamilyRow.COLUMNS),
           *(_ACCOUNTS.c[name] for name in AccountRow.COLUMNS))
    .join_from(_CODES, _GRANTS, _GRANTS.c.id == _CODES.c.grant_id)
    .join(_ACCOUNTS, _ACCOUNTS.c.id == _CODES.c.account_id)
    .where(_CODES.c.code_hash == bindparam("hash"), _CODES.c.client_id == bindparam("client_id"))
)
_CODE_END = len(PresentedCode.COLUMNS)
_GRANT_END = _CODE_END + len(FamilyRow.COLUMNS)
_CLAIM = (
    update(_CODES)
    .where(_CODES.c.id == bindparam("code_id"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
# Longest code looked up (ours are 48 characters).
MAX_CODE_LENGTH = 512


def save(code: str, grant: Mapping, values: Mapping) -> None:
    """Write an issued code (its hash) and, first, the grant of the family it starts: the
    grant exists before the code can be redeemed (or replayed), so a revocation always has a
    row to mark, whichever of two racing redemptions comes first. ``grant`` holds the grant's
    ``client_id``, ``account_id``, ``amr`` and ``claims``; ``values`` the code's other columns."""
    now = clock.now()
    grant_id = new_id()
    execute(_INSERT_GRANT, {**grant, "id": grant_id, "created_at": now})
    execute(_INSERT_CODE, {**values, "code_hash": token_hash(code), "grant_id": grant_id, "created_at": now})


def find(code, client_id: str) -> PresentedCode | None:
    """The stored code of ``code`` issued to the client, with its family's grant and its
    person, as read-only rows; None for anything else."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        return None
    row = read_row(_FIND, {"hash": token_hash(code), "client_id": client_id})
    if row is None:
        return None
    return PresentedCode(zip(PresentedCode.COLUMNS, row[:_CODE_END]),
                         FamilyRow(zip(FamilyRow.COLUMNS, row[_CODE_END:_GRANT_END])),
                         AccountRow(zip(AccountRow.COLUMNS, row[_GRANT_END:])))


def claim(code: PresentedCode) -> bool:
    """Mark the code used in one conditional UPDATE, committed at once (kept although the token
    request then fails): of two requests racing with the same code only one wins; the loser is
    reuse. The presented row is left as it was read."""
    parameters = {"code_id": code.id, "now": clock.now()}
    claimed = committed_alone(_CLAIM, parameters)
    if claimed is None:
        with kept():
            claimed = execute(_CLAIM, parameters)
    return bool(claimed.rowcount)
