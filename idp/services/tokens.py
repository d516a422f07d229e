"""Token bookkeeping the domain decides: claiming refresh tokens, revoking families,
a session's, an account's or a connector user's tokens, and what a replayed credential costs.

A family is revoked on its `Grant` row, which every use of a token reads: a token the
family saves after its revocation (the winner of a race with a replay) is revoked too.
A reuse report is kept (``kept()``), as a claimed code is (services.authorization_codes):
it must stand although the token request that triggered it is refused. A refresh token is
rotated on a connection of its own (``Rotation``): read with its family and person in one
SELECT of columns, and claimed in the transaction that saves its successor, so a refused
refresh leaves it usable.

A new token is written as a row of values (``save``), in one INSERT on the table: the request
never reads it back, so an ORM object would only add its unit-of-work bookkeeping."""

from __future__ import annotations

import logging

from collections.abc import Mapping, MutableMapping

from sqlalchemy import bindparam, case, insert, select, update

from .. import clock
from ..extensions import db
from ..models import Account, ConnectorUser, Grant, SsoSession, Token
from ..models.base import new_id
from ..models.oauth import AccountRow, FamilyRow, PresentedRefreshToken
from ..unit_of_work import KeptStatements, PooledTransaction, committed_alone, execute, kept
from . import audit
from .crypto import token_hash

log = logging.getLogger(__name__)


# On the tables, not the entities, through the session's connection: the ORM's bookkeeping
# (loading and tracking rows, bulk-update synchronisation, a flush's unit of work) would cost
# more than the statements.
_TOKENS = Token.__table__
# Every column a saved token may set, so that the INSERT is compiled once (SQLAlchemy caches a
# statement by the parameters it is given).
TOKEN_COLUMNS = ("client_id", "account_id", "connector_id", "grant_id", "session_id", "access_token_hash",
                 "refresh_token_hash", "scope", "issued_at", "expires_in", "refresh_expires_at", "auth_time",
                 "revoked_at", "access_revoked_at", "dpop_jkt")
_GRANTS = Grant.__table__
_ACCOUNTS = Account.__table__
_INSERT_TOKEN = insert(_TOKENS)
_INSERT_GRANT = insert(_GRANTS)
_CLAIM_REFRESH = (
    update(_TOKENS)
    .where(_TOKENS.c.id == bindparam("token_id"), _TOKENS.c.refresh_used_at.is_(None),
           _TOKENS.c.revoked_at.is_(None))
    .values(refresh_used_at=bindparam("now"))
)


# A token's values in an INSERT ... SELECT whose WITH writes another row (PostgreSQL), bound by
# names of no column (``new_...`` for the new token's, ``ended_...`` for what it is if its session
# has ended): a parameter named as a column would be set by the WITH's UPDATE as well.
def _bound(name: str, prefix: str = "new"):
    return bindparam(f"{prefix}_{name}", type_=_TOKENS.c[name].type)


def _bound_values(token: Mapping, prefix: str = "new", names=TOKEN_COLUMNS) -> dict:
    """The parameters of ``_bound`` for a token's values (by default every name of ``TOKEN_COLUMNS``)."""
    return {f"{prefix}_{name}": token[name] for name in names}


# The claim and the successor's INSERT in one statement (PostgreSQL): the successor is saved
# only if the claim won, and both are committed together, in the statement's own transaction.
_CLAIMED = _CLAIM_REFRESH.returning(_TOKENS.c.id).cte("claimed")
_CLAIM_AND_SAVE = insert(_TOKENS).from_select(
    TOKEN_COLUMNS, select(*(_bound(name) for name in TOKEN_COLUMNS)).select_from(_CLAIMED))

# A presented refresh token, its family and its person, in one SELECT of columns (see
# ``Rotation.find``); the columns in the order of the rows' COLUMNS, read by position.
_FIND_FOR_ROTATION = (
    select(*(_TOKENS.c[name] for name in PresentedRefreshToken.COLUMNS),
           *(_GRANTS.c[name] for name in FamilyRow.COLUMNS),
           *(_ACCOUNTS.c[name] for name in AccountRow.COLUMNS))
    .join_from(_TOKENS, _GRANTS, _GRANTS.c.id == _TOKENS.c.grant_id)
    .outerjoin(_ACCOUNTS, _ACCOUNTS.c.id == _TOKENS.c.account_id)
    .where(_TOKENS.c.refresh_token_hash == bindparam("hash"))
)
# A token's sign-in session, locked by writing its row unchanged (``mind_ended_session``).
_SESSIONS = SsoSession.__table__
_LOCK_SESSION = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("session_id"))
    .values(ended_at=_SESSIONS.c.ended_at)
    .returning(_SESSIONS.c.ended_at, _SESSIONS.c.expires_at)
)
# A session-bound token saved minding its session in one statement (PostgreSQL; see
# ``save_minding_session``): the session row locked in the WITH, as ``_LOCK_SESSION`` locks it,
# and the token inserted revoked as ``mind_ended_session`` revokes it unless the session lives
# (its values then bound as ``ended_...``: ``_bound``).
_MINDED = _LOCK_SESSION.cte("minded")
_SESSION_LIVES = (
    select(_MINDED.c.expires_at)
    .where(_MINDED.c.ended_at.is_(None), _MINDED.c.expires_at > bindparam("now", type_=_SESSIONS.c.expires_at.type))
    .exists()
)
_ENDED_WITH_SESSION = ("revoked_at", "access_revoked_at")


def _minded(name: str):
    value = _bound(name)
    if name not in _ENDED_WITH_SESSION:
        return value
    return case((_SESSION_LIVES, value), else_=_bound(name, "ended"))


_SAVE_MINDING_SESSION = insert(_TOKENS).from_select(TOKEN_COLUMNS, select(*(_minded(name) for name in TOKEN_COLUMNS)))
_TOKEN_END = len(PresentedRefreshToken.COLUMNS)
_GRANT_END = _TOKEN_END + len(FamilyRow.COLUMNS)
# Longest refresh token looked up (ours are 43 characters).
MAX_REFRESH_TOKEN_LENGTH = 512


def _session_in_transaction() -> bool:
    """Whether the request's session has begun a transaction (without making the session)."""
    return db.session.registry.has() and db.session().in_transaction()


class Rotation:
    """The rotation of one presented refresh token, on a connection of the engine's own, not
    the request's session: the token read with its family and person (``find``), then claimed
    and replaced (``rotate``) and committed at once, before the response is made (an ID token
    signed, the answer encoded): the claim's lock (SQLite's write lock, a PostgreSQL row lock)
    is held for those statements only, so concurrent refreshes do not wait for each other's
    signatures. The session's unit of work (its autobegin, its connection bookkeeping, its
    commit and close) would cost more than the statements; the rotation has nothing for it to
    track.

    On SQLite, one connection of the pool from the read to the commit. On PostgreSQL, where each
    statement is a round trip: the read on a connection kept beside the pool, in autocommit
    (``KeptStatements``, no ping), and a rotation with nothing more to write than its successor
    (an offline family's next token) one statement on it, the claim and the INSERT committed
    together: two round trips where a transaction on a pooled connection takes five (BEGIN, the
    read, the claim, the INSERT, COMMIT; and a ping for a connection that waited long). The read
    outside the claim's transaction decides nothing the claim does not check again, as under
    READ COMMITTED: the claim is conditional (unused, unrevoked), and a family revoked meanwhile
    revokes the tokens it saves later. A rotation that writes more (a session-bound token minds
    its session) runs in a transaction on a pooled connection, from the session's lock on.

    ``close`` returns the connection, rolling back what was not committed; the grant closes the
    rotation however the request ends, and before anything else of the request writes (a
    reported reuse writes through the session).

    When the request's session has already begun a transaction (something of the request is
    pending on it, and on SQLite it may hold the write lock a second connection would wait
    for), the rotation joins it: it runs on the session's connection and its commit commits
    the session, keeping what it loaded."""

    def __init__(self) -> None:
        self._connection = None
        self._on_session = False

    @property
    def connection(self):
        """The session's connection (see above), else on PostgreSQL ``KeptStatements`` until the
        rotation needs a transaction, else a ``PooledTransaction``: its statements compiled once
        and run on the DB-API connection, without SQLAlchemy's connection and result around
        each; else, while statement listeners are on the engine (which must see the
        statements), a SQLAlchemy connection of the engine."""
        if self._connection is None:
            engine = db.engine
            if _session_in_transaction():
                self._on_session = True
                self._connection = db.session.connection()
            elif not PooledTransaction.usable(engine):
                self._connection = engine.connect()
            elif KeptStatements.write(engine):  # the claim and its successor may be one statement there
                self._connection = KeptStatements(engine)
            else:
                self._connection = PooledTransaction(engine)
        return self._connection

    def _transaction(self):
        """The connection, in a transaction from here on: a ``PooledTransaction`` in place of
        ``KeptStatements``, whose statements would each be committed on their own."""
        if isinstance(self.connection, KeptStatements):
            self._connection.close()
            self._connection = PooledTransaction(self._connection.engine)
        return self._connection

    def find(self, value) -> PresentedRefreshToken | None:
        """The stored token of a refresh token presented for rotation, with its family's grant
        and its person, as read-only rows from one SELECT: what the refresh grant decides by
        and the ID token it issues tells, without the ORM's loading and tracking."""
        if not isinstance(value, str) or not value or len(value) > MAX_REFRESH_TOKEN_LENGTH:
            return None
        row = self.connection.execute(_FIND_FOR_ROTATION, {"hash": token_hash(value)}).first()
        if row is None:
            return None
        account = row[_GRANT_END:]
        return PresentedRefreshToken(
            zip(PresentedRefreshToken.COLUMNS, row[:_TOKEN_END]),
            FamilyRow(zip(FamilyRow.COLUMNS, row[_TOKEN_END:_GRANT_END])),
            AccountRow(zip(AccountRow.COLUMNS, account)) if account[0] is not None else None,
        )

    def claim(self, token: PresentedRefreshToken, now) -> bool:
        """Rotate in one conditional UPDATE: of two racing requests only one wins. Not
        committed: ``commit`` commits the claim with the token that replaces it. The
        presented row is left as it was read."""
        return bool(self._transaction().execute(_CLAIM_REFRESH, {"token_id": token.id, "now": now}).rowcount)

    def rotate(self, token: PresentedRefreshToken, now, successor: MutableMapping, minds_session: bool = False) -> bool:
        """Claim ``token`` and save ``successor`` (the values of ``save``) in its place, committed
        at once; False, with nothing written, if the claim was lost. With ``minds_session`` (a
        rotation narrowed to an online scope: the successor lives and dies with its sign-in
        session) the session's row is locked and read first (``mind_ended_session``), in the
        claim's transaction and before the claim locks the token's row: the order in which an
        end of the session takes them (``sessions.end``: the session, then its tokens), so that
        the two wait for each other in turn where, in the other order, each would hold what the
        other waits for and PostgreSQL would end one of them."""
        if not minds_session and isinstance(self.connection, KeptStatements):
            parameters = {**_bound_values(successor), "token_id": token.id, "now": now}
            claimed = self._connection.execute(_CLAIM_AND_SAVE, parameters)
            self.close()
            return bool(claimed.rowcount)
        if minds_session:
            mind_ended_session(successor, self._transaction())
        if not self.claim(token, now):
            self.close()
            return False
        save(successor, self.connection)
        self.commit()
        return True

    def commit(self) -> None:
        """Commit the claim with its successor, and return the connection."""
        if self._on_session:
            _commit_session()
        else:
            self.connection.commit()
        self.close()

    def close(self) -> None:
        """Return the connection, rolling back what was not committed (a refused rotation);
        the session's connection stays with the session, which the request ends."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._on_session:
            self._on_session = False
            if db.session().in_transaction():
                db.session.rollback()
        else:
            connection.close()


def _commit_session() -> None:
    """Commit the request's session with a rotation on it, before the response is made.
    What the request loaded stays loaded (it is what the transaction just saw and wrote), so
    the response is made without reading it again."""
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _in_id_order(*conditions):
    """The tokens that match ``conditions``, for an UPDATE of several: their rows locked in the
    order of their ids first (``SELECT … ORDER BY id FOR NO KEY UPDATE`` on PostgreSQL; SQLite
    has one writer at a time). Every statement that ends several tokens takes them so, and a single
    token's statements take one row, so two of them sharing tokens wait for each other in
    turn: in another order (the index's, a table scan's) each could hold a row the other waits
    for, and PostgreSQL would end one of them."""
    return locked_in_id_order(Token.id, *conditions)


def locked_in_id_order(id_column, *conditions, deleting: bool = False):
    """``_in_id_order`` for the rows of ``id_column``'s table (tokens, grants, what a prune
    deletes), locked as the statement locks them. For an UPDATE, FOR NO KEY UPDATE: a token of
    a grant being revoked may be saved meanwhile (its INSERT locks the grant FOR KEY SHARE),
    where FOR UPDATE would keep it waiting, and a rotation that holds the token a revocation
    waits for would wait for the revocation in turn. For a DELETE (``deleting``), FOR UPDATE,
    the DELETE's own lock, not taken in two steps."""
    return id_column.in_(select(id_column).where(*conditions).order_by(id_column)
                         .with_for_update(key_share=not deleting))


def _revoke_grants(*conditions) -> None:
    """Revoke the grants that match ``conditions``, their rows locked in the order of their ids
    (as ``_in_id_order`` locks tokens'): two revocations sharing grants wait for each other in
    turn, where each could hold a grant the other waits for in the order of its plan."""
    db.session.execute(update(Grant).where(locked_in_id_order(Grant.id, Grant.revoked_at.is_(None), *conditions))
                       .values(revoked_at=clock.now()))


def revoke_family(grant_id: str) -> int:
    """Revoke the grant, and with it every token of its family, saved or still to be saved."""
    _revoke_grants(Grant.id == grant_id)
    return db.session.execute(
        update(Token).where(_in_id_order(Token.grant_id == grant_id, Token.revoked_at.is_(None)))
        .values(revoked_at=clock.now())
    ).rowcount


def revoke_token(token_id: int) -> int:
    """Revoke one token on its own: a family of one (a connector user's token)."""
    return db.session.execute(
        update(Token).where(Token.id == token_id, Token.revoked_at.is_(None)).values(revoked_at=clock.now())
    ).rowcount


def revoke_for_account(account: Account) -> int:
    """Revoke every grant of the account, then every token of it, those of the sign-in
    sessions just ended with it included (``sessions.end_all_for`` leaves them here)."""
    _revoke_grants(Grant.account_id == account.id)
    return db.session.execute(
        update(Token).where(_in_id_order(Token.account_id == account.id, Token.revoked_at.is_(None)))
        .values(revoked_at=clock.now())
    ).rowcount


def end_session_tokens(*session_ids: str) -> int:
    """Sign-in sessions ended: the access tokens issued in them end, and so do their
    refresh tokens unless `offline_access` was granted (an offline grant outlives the
    sign-in it started in). One statement, its rows locked in the order of their ids
    (``_in_id_order``), however many sessions ended."""
    if not session_ids:
        return 0
    now = clock.now()
    offline = Token.scope.contains("offline_access")
    of_sessions = Token.session_id == session_ids[0] if len(session_ids) == 1 else Token.session_id.in_(session_ids)
    ending = _in_id_order(of_sessions, Token.revoked_at.is_(None), ~offline | Token.access_revoked_at.is_(None))
    return db.session.execute(
        update(Token).where(ending).values(revoked_at=case((offline, Token.revoked_at), else_=now),
                                           access_revoked_at=case((offline, now), else_=Token.access_revoked_at))
    ).rowcount


def revoke_for_connector(connector: ConnectorUser) -> int:
    return db.session.execute(
        update(Token).where(_in_id_order(Token.connector_id == connector.id, Token.revoked_at.is_(None)))
        .values(revoked_at=clock.now())
    ).rowcount


def new_family(client_id: str, now) -> str:
    """A grant of its own for a token that starts no family of people's tokens (a connector
    user's: a family of one, with a grant to revoke it by); its id."""
    grant_id = new_id()
    execute(_INSERT_GRANT, {"id": grant_id, "client_id": client_id, "created_at": now})
    return grant_id


def save(token: Mapping, connection=None) -> None:
    """Write a new token: ``token`` maps every name of ``TOKEN_COLUMNS`` to its value. On
    ``connection`` (a rotation's), else the request's session."""
    (connection.execute if connection is not None else execute)(_INSERT_TOKEN, token)


def outlives_session(scope: str | None) -> bool:
    """An offline grant's token: its refresh token outlives the sign-in session it began in."""
    return "offline_access" in (scope or "").split()


def save_minding_session(token: MutableMapping) -> None:
    """Save a token of a sign-in session (``save``) minding that session (``mind_ended_session``),
    through the request's session; on PostgreSQL, when the request has nothing else in its
    session, as one statement committed at once on a kept connection (``committed_alone``): the
    session row locked by the statement's WITH and held until it commits, the token inserted
    revoked unless the session lives. One round trip where the request's session takes five (the
    ping, BEGIN, the lock, the INSERT, COMMIT); the same answer to an end of the session racing it.
    The token is then committed before the answer is made (as a refresh token's rotation is): a
    failure after it leaves a row whose values nobody received."""
    now = clock.now()
    ended = dict(token)
    _end_with_session(ended, now)
    parameters = {**_bound_values(token), **_bound_values(ended, "ended", _ENDED_WITH_SESSION),
                  "session_id": token["session_id"], "now": now}
    if token["session_id"] and committed_alone(_SAVE_MINDING_SESSION, parameters) is not None:
        return
    mind_ended_session(token)
    save(token)


def _end_with_session(token: MutableMapping, now) -> None:
    """End ``token`` as its ended sign-in session's tokens end: an offline grant's keeps its
    refresh token, any other is revoked."""
    if outlives_session(token["scope"]):
        token["access_revoked_at"] = now
    else:
        token["revoked_at"] = now


def mind_ended_session(token: MutableMapping, connection=None) -> None:
    """A token about to be saved in a sign-in session that has ended (the person logged out
    before the client redeemed the code) ends as the session's other tokens did.

    The session row is locked before it is read, in one statement that writes it unchanged:
    a row lock on PostgreSQL, the database's write lock on SQLite. So an end of the session
    racing this request either committed first and is seen here, or waits until this token is
    committed and then ends it with the others (``sessions.end`` writes the session row before
    it ends the tokens). The lock is held until the token request commits.

    A session whose row is gone has ended too: ``idp db prune`` deletes a session as soon as
    it ended or expired, while its codes and offline refresh tokens live on. An expired
    session counts as ended as well, so the answer is the same before and after the prune.

    ``token`` is the new token's values (see ``save``), ended here by setting them; the
    session row is locked on ``connection`` (a rotation's, which saves the token), else on
    the request's session."""
    if not token["session_id"]:
        return
    run = connection.execute if connection is not None else execute
    session = run(_LOCK_SESSION, {"session_id": token["session_id"]}).first()
    now = clock.now()
    if session is not None and session[0] is None and session[1] > now:  # not ended, not expired
        return
    _end_with_session(token, now)


def _connections(account_id: str, client_id: str) -> tuple:
    """The person's offline connections to the client: tokens that carry a refresh token."""
    return (
        Token.account_id == account_id,
        Token.client_id == client_id,
        Token.refresh_token_hash.is_not(None),
        Token.revoked_at.is_(None),
    )


def end_earlier_connections(token: Mapping) -> None:
    """One connection per application per login: a new offline grant (``token``, the values
    of its first token) ends the earlier ones."""
    earlier = (*_connections(token["account_id"], token["client_id"]), Token.grant_id != token["grant_id"])
    _revoke_grants(Grant.id.in_(select(Token.grant_id).where(*earlier).scalar_subquery()))
    db.session.execute(update(Token).where(_in_id_order(*earlier)).values(revoked_at=clock.now()))


def has_connection(account_id: str, client_id: str) -> bool:
    """Whether the person has a connection to the client that still works (a usable refresh
    token), which a new offline grant would end (``end_earlier_connections``)."""
    now = clock.now()
    usable = db.session.scalar(
        select(Token.id)
        .join(Grant, Grant.id == Token.grant_id)
        .where(*_connections(account_id, client_id), Token.refresh_used_at.is_(None),
               Token.refresh_expires_at > now, Grant.revoked_at.is_(None))
        .limit(1)
    )
    return usable is not None


def revoke_for_client(account_id: str, client_id: str) -> int:
    """Every grant of the person to the client ends, and with it every token of those
    families (refresh tokens included), also codes not redeemed yet."""
    _revoke_grants(Grant.account_id == account_id, Grant.client_id == client_id)
    return db.session.execute(
        update(Token)
        .where(_in_id_order(Token.account_id == account_id, Token.client_id == client_id, Token.revoked_at.is_(None)))
        .values(revoked_at=clock.now())
    ).rowcount


def report_reuse(kind: str, row, client_id: str, *, ip: str | None) -> None:
    """A spent code or refresh token came back: revoke what it issued and say so (kept,
    although the request is refused)."""
    with kept():
        revoked = revoke_family(row.grant_id)
        account = db.session.get(Account, row.account_id) if row.account_id else None
        audit.record(f"{kind}.reuse_detected", actor=f"client:{client_id}", account=account, outcome="failure",
                     ip=ip, revoked=revoked)
    log.warning("%s reuse for client %s: revoked %s tokens of grant %s", kind, client_id, revoked, row.grant_id)


def report_unproven(kind: str, row, client_id: str, *, ip: str | None) -> None:
    """A code or refresh token bound to a DPoP key came without a proof of that key: a copy
    in other hands, most likely. It is refused (and stays good for its owner); say so."""
    account = db.session.get(Account, row.account_id) if row.account_id else None
    with kept():
        audit.record(f"{kind}.dpop_refused", actor=f"client:{client_id}", account=account, outcome="failure", ip=ip,
                     grant=row.grant_id)
    log.warning("%s of grant %s presented without its DPoP key by client %s", kind, row.grant_id, client_id)
