"""The machinery every self-service flow shares: start, load, expire, advance.

A flow's row is read and written with plain SQL statements, not as an ORM object: a step
reads one row and changes a column or two, and the ORM's identity map and unit of work cost
more than the step's own work. ``FlowRow`` holds the row's values and the columns changed
since; the changes are written with one UPDATE of those columns when the transaction commits
(the request's commit or a ``kept()`` one), and dropped with a rollback, as the ORM did. A
row is inserted at once (codes and mails refer to it), and read once per transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import bindparam, event, insert, select, update

from .. import clock, unit_of_work
from ..errors import FlowExpired, FlowNotFound, StepOutOfOrder
from ..extensions import db
from ..models import Account, Flow
from ..models.base import new_token
from ..unit_of_work import kept

FLOWS = Flow.__table__
COLUMNS = tuple(c.name for c in FLOWS.columns)
_BY_ID = select(FLOWS).where(FLOWS.c.id == bindparam("flow_id"))
_BY_LINK = select(FLOWS).where(FLOWS.c.link_hash == bindparam("link_hash"), FLOWS.c.kind == bindparam("kind"))
_INSERT = insert(FLOWS)
_UPDATE = update(FLOWS).where(FLOWS.c.id == bindparam("flow_id"))
# session.info keys: the rows read in this transaction (id -> FlowRow), and those changed since
# they were read or last written.
_READ, _CHANGED = "idp.flows.read", "idp.flows.changed"


class FlowRow:
    """One row of ``flows``: its columns as attributes; setting one marks it for the commit."""

    __slots__ = ("_values", "_changed")

    def __init__(self, values: dict):
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_changed", set())

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        if name not in self._values:
            raise AttributeError(name)
        self._values[name] = value
        self._changed.add(name)
        if not db.session().in_transaction():
            db.session.begin()  # after a kept() commit: the request's commit then writes the change
        db.session.info.setdefault(_CHANGED, {})[self._values["id"]] = self

    def write(self) -> None:
        """One UPDATE of the columns changed since the last write (none: nothing)."""
        if not self._changed:
            return
        changes = {name: self._values[name] for name in self._changed}
        self._changed.clear()
        unit_of_work.execute(_UPDATE, {"flow_id": self._values["id"], **changes})


def _row(mapping) -> FlowRow:
    row = FlowRow(dict(mapping))
    db.session.info.setdefault(_READ, {})[row.id] = row
    return row


@event.listens_for(db.session, "before_commit")
def _write_changed(session) -> None:
    changed = session.info.pop(_CHANGED, None)
    for row in (changed or {}).values():
        row.write()


@event.listens_for(db.session, "after_transaction_end")
def _forget(session, transaction) -> None:
    # Read again in the next transaction, as the ORM expires its objects; a rollback also
    # drops the changes not written.
    if transaction.parent is None:
        session.info.pop(_READ, None)
        for row in session.info.pop(_CHANGED, {}).values():
            row._changed.clear()


@dataclass
class Context:
    """What a step needs to know about the request, without Flask's request."""

    ip: str | None = None
    user_agent: str | None = None
    locale: str | None = None
    # The browser's device cookie (web/devices.py): its id and the accounts it is familiar to.
    device_id: str | None = None
    device_accounts: tuple[str, ...] = ()


def joined(*tables: dict) -> dict:
    """One table from the tables of a flow's parts: edges (sets) or actions (dicts) per state."""
    out: dict = {}
    for table in tables:
        for state, value in table.items():
            out[state] = out.get(state, type(value)()) | value
    return out


class FlowMachine:
    """Subclasses name their ``kind``, their ``TRANSITIONS`` (state -> allowed next
    states, the whole graph), their ``ACTIONS`` and one ``step_<state>(form, ctx)`` per
    interactive state, returning the next state. ``advance()`` is the only way a flow
    moves, and every move goes through ``move_to()`` along an edge of the table."""

    kind: str = ""
    initial: str = ""
    # The whole state graph: state -> the states it may move to, by a step or by an action.
    TRANSITIONS: dict[str, set[str]] = {}
    FINAL: set[str] = {"done"}
    # Actions besides submitting a step (e.g. "resend"): state -> {action: the state it leads to}.
    # Each is an edge of TRANSITIONS; ``action_<name>(form, ctx)``, where defined, does its work.
    ACTIONS: dict[str, dict[str, str]] = {}
    # Actions that a link shows as a read-only page (GET); posting that page's form takes the
    # action and submits the step it leads to.
    LINKED: set[str] = set()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for state, actions in cls.ACTIONS.items():
            for action, target in actions.items():
                if target not in cls.TRANSITIONS.get(state, set()):
                    raise TypeError(f"{cls.kind}: action {action!r} from {state!r} is not an edge of TRANSITIONS")

    def __init__(self, row: FlowRow):
        self.row = row

    @classmethod
    def create(cls, *, state: str | None = None, account_id: str | None = None, data: dict | None = None, lifetime=None):
        lifetime = lifetime or current_app.config["FLOW_LIFETIME"]
        now = clock.now()
        values = dict.fromkeys(COLUMNS)
        values.update(id=new_token(), kind=cls.kind, state=state or cls.initial, account_id=account_id,
                      data=data or {}, created_at=now, expires_at=now + dt.timedelta(seconds=lifetime))
        unit_of_work.execute(_INSERT, values)
        return cls(_row(values))

    @classmethod
    def load(cls, flow_id: str, owned: list[str]):
        """The flow with this id, provided this browser started it."""
        if not isinstance(flow_id, str) or flow_id not in owned:
            raise FlowNotFound()
        row = cls.row_by_id(flow_id)
        if row is None or row.kind != cls.kind:
            raise FlowNotFound()
        return cls(row)

    @staticmethod
    def row_by_id(flow_id: str) -> FlowRow | None:
        read = db.session.info.get(_READ, {}).get(flow_id)
        if read is not None:
            return read
        _write_changed(db.session)  # a query sees what this transaction changed, as after an autoflush
        mapping = unit_of_work.execute(_BY_ID, {"flow_id": flow_id}).mapping()
        return _row(mapping) if mapping is not None else None

    @classmethod
    def row_by_link(cls, link_hash: str) -> FlowRow | None:
        _write_changed(db.session)
        mapping = db.session.execute(_BY_LINK, {"link_hash": link_hash, "kind": cls.kind}).mappings().one_or_none()
        return _row(mapping) if mapping is not None else None

    @classmethod
    def load_for(cls, flow_id: str, owned: list[str], account: Account):
        """The flow, provided this browser started it for this signed-in account."""
        flow = cls.load(flow_id, owned)
        if flow.row.account_id != account.id:
            raise FlowNotFound()
        return flow

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def account(self) -> Account | None:
        # Held by the flow for the request: the session's identity map holds a clean object
        # weakly only, and every step asks for it again.
        account_id = self.row.account_id
        if account_id is None:
            return None
        account = self.__dict__.get("_account")
        if account is None or account.id != account_id or account not in db.session:
            account = self._account = db.session.get(Account, account_id)
        return account

    @property
    def state(self) -> str:
        return self.row.state

    @property
    def data(self) -> dict:
        return self.row.data

    def update_data(self, **values) -> None:
        # JSON columns notice reassignment, not in-place mutation.
        self.row.data = {**self.row.data, **values}

    def keep_challenge(self, challenge: str, state: str = "") -> None:
        """A WebAuthn challenge the flow's page asked for in ``state``, replacing an earlier one."""
        self.row.challenge = f"{state} {challenge}"

    def spend_challenge(self, state: str = "") -> str | None:
        """The challenge asked for in ``state``, once: it is removed (and committed at once)
        before the caller checks the answer, so an answer that is refused cannot come back."""
        kept_value = self.row.challenge
        if kept_value is not None:
            with kept():
                self.row.challenge = None
        asked_in, _, challenge = (kept_value or "").partition(" ")
        return challenge if kept_value and asked_in == state else None

    def expired(self) -> bool:
        return self.row.expires_at <= clock.now()

    def check_live(self) -> None:
        if self.row.completed_at is not None and self.row.state in self.FINAL:
            return
        if self.expired():
            raise FlowExpired()

    def advance(self, submitted_state: str, form, ctx: Context, action: str | None = None) -> str:
        """Submit the current step, or take ``action``. ``submitted_state`` is the state the
        page was rendered for: a stale page (back button, second tab) is refused; a linked
        page (see ``LINKED``) takes its action first."""
        self.check_live()
        if self.row.state in self.FINAL:
            raise StepOutOfOrder()
        if action:
            if submitted_state != self.row.state:
                raise StepOutOfOrder()
            self.take(action, form, ctx)
            return self.row.state
        if submitted_state != self.row.state:
            self.take(self._linked_action_to(submitted_state), form, ctx)
        handler = getattr(self, f"step_{self.row.state}")
        nxt = handler(form, ctx)
        self.move_to(nxt)
        return nxt

    def take(self, action: str, form, ctx: Context) -> None:
        """An action of the current state: its work, then its edge."""
        target = self.ACTIONS.get(self.row.state, {}).get(action)
        if target is None:
            raise StepOutOfOrder()
        hook = getattr(self, f"action_{action}", None)
        if hook is not None:
            hook(form, ctx)
        self.move_to(target)

    def linked_page(self, action: str) -> str:
        """The state whose page a link shows for ``action``, without moving the flow."""
        self.check_live()
        target = self.ACTIONS.get(self.row.state, {}).get(action)
        if action not in self.LINKED or self.row.state in self.FINAL or target is None:
            raise StepOutOfOrder()
        return target

    def _linked_action_to(self, state: str) -> str:
        for action, target in self.ACTIONS.get(self.row.state, {}).items():
            if action in self.LINKED and target == state:
                return action
        raise StepOutOfOrder()

    def move_to(self, nxt: str) -> None:
        if nxt not in self.TRANSITIONS.get(self.row.state, set()):
            raise RuntimeError(f"{self.kind}: illegal transition {self.row.state} -> {nxt}")
        self.row.state = nxt
        if nxt in self.FINAL:
            self.row.completed_at = clock.now()
