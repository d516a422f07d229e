"""Support actions (F9) at a frozen clock, and the table the CLI and the console are built from."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from idp import clock
from idp.errors import InvalidInput
from idp.extensions import db
from idp.models import AuditEvent
from idp.services import lockout, support


def audited(action):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_every_action_writes_its_audit_entry(account):
    for _ in range(5):
        lockout.count_failure(account)
    for name in ("unlock", "reset-2fa", "disable", "enable"):
        action = support.ACTIONS[name]
        action.perform(account, actor="staff:s@example.com", ip="10.0.0.1", reason="Called in")
        assert [e.reason for e in audited(action.audit_action)] == ["Called in"], name
    assert account.status(clock.now()) == "active" and account.totp_secret is None


@pytest.mark.parametrize("name", [a.name for a in support.ACTIONS.values() if a.reason_required])
def test_a_required_reason_is_required(account, name):
    with pytest.raises(InvalidInput):
        support.ACTIONS[name].perform(account, actor="staff:s@example.com", ip=None, reason="  ")


def test_the_table_is_complete():
    for action in support.ACTIONS.values():
        assert action.subject in ("account", "connector") and action.summary
        assert action.destructive <= action.reason_required  # a destructive action always says why
    assert {a.name for a in support.ACTIONS.values() if a.destructive} == {"reset-2fa", "disable"}


def test_disable_refuses_sign_in_from_now_on(account):
    support.disable(account, actor="staff:s@example.com", ip=None, reason="Fraud")
    assert account.disabled_at == clock.now() and account.status(clock.now()) == "disabled"
    clock.advance(days=1)
    support.disable(account, actor="staff:s@example.com", ip=None, reason="Again")
    assert account.disabled_at == clock.now() - dt.timedelta(days=1)  # the first disable's time stays
