"""The machinery every self-service flow shares: start, load, expire, advance."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app

from .. import clock
from ..errors import FlowExpired, FlowNotFound, StepOutOfOrder
from ..extensions import db
from ..models import Flow


@dataclass
class Context:
    """What a step needs to know about the request, without Flask's request."""

    ip: str | None = None
    user_agent: str | None = None
    locale: str | None = None


class FlowMachine:
    """Subclasses name their ``kind``, their ``TRANSITIONS`` (state -> allowed next
    states) and one ``step_<state>(form, ctx)`` per interactive state, returning the
    next state. ``advance()`` is the only way a flow moves."""

    kind: str = ""
    initial: str = ""
    TRANSITIONS: dict[str, set[str]] = {}
    FINAL: set[str] = {"done"}
    # Actions that may be taken in a state besides submitting it (e.g. "resend").
    ACTIONS: dict[str, set[str]] = {}

    def __init__(self, row: Flow):
        self.row = row

    @classmethod
    def create(cls, *, state: str | None = None, account_id: str | None = None, data: dict | None = None, lifetime=None):
        lifetime = lifetime or current_app.config["FLOW_LIFETIME"]
        row = Flow(
            kind=cls.kind,
            state=state or cls.initial,
            account_id=account_id,
            data=data or {},
            expires_at=clock.now() + dt.timedelta(seconds=lifetime),
        )
        db.session.add(row)
        db.session.flush()
        return cls(row)

    @classmethod
    def load(cls, flow_id: str, owned: list[str]):
        """The flow with this id, provided this browser started it."""
        if not isinstance(flow_id, str) or flow_id not in owned:
            raise FlowNotFound()
        row = db.session.get(Flow, flow_id)
        if row is None or row.kind != cls.kind:
            raise FlowNotFound()
        return cls(row)

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def state(self) -> str:
        return self.row.state

    @property
    def data(self) -> dict:
        return self.row.data

    def update_data(self, **values) -> None:
        # JSON columns notice reassignment, not in-place mutation.
        self.row.data = {**self.row.data, **values}

    def expired(self) -> bool:
        return self.row.expires_at <= clock.now()

    def check_live(self) -> None:
        if self.row.completed_at is not None and self.row.state in self.FINAL:
            return
        if self.expired():
            raise FlowExpired()

    def advance(self, submitted_state: str, form, ctx: Context, action: str | None = None) -> str:
        """Submit the current step. ``submitted_state`` is the state the page was
        rendered for: a stale page (back button, second tab) is refused."""
        self.check_live()
        if self.row.state in self.FINAL or submitted_state != self.row.state:
            raise StepOutOfOrder()
        if action:
            if action not in self.ACTIONS.get(self.row.state, set()):
                raise StepOutOfOrder()
            getattr(self, f"action_{action}")(form, ctx)
            return self.row.state
        handler = getattr(self, f"step_{self.row.state}")
        nxt = handler(form, ctx)
        self.move_to(nxt)
        return nxt

    def move_to(self, nxt: str) -> None:
        if nxt not in self.TRANSITIONS.get(self.row.state, set()):
            raise RuntimeError(f"{self.kind}: illegal transition {self.row.state} -> {nxt}")
        self.row.state = nxt
        if nxt in self.FINAL:
            self.row.completed_at = clock.now()
