"""The smart lockout's counters: per (address, source), growing locks with a ceiling, a
memory that fades, and rows the pruner may delete only once they are forgotten."""

from __future__ import annotations

import datetime as dt

import pytest

from idp import clock
from idp.extensions import db
from idp.models import SignInSource
from idp.services import prune, smart_lockout

HOME = smart_lockout.source_of(None, device_id=None, device_accounts=(), ip="192.0.2.1")
LAPTOP = smart_lockout.source_of("account", device_id="abc", device_accounts=("account",), ip="192.0.2.1")


def lock(email, source, times=5):
    return [smart_lockout.count_failure(email, source) for _ in range(times)][-1]


def test_sources_are_counted_apart(ctx):
    until = lock("anna@example.com", HOME)
    assert until == clock.now() + dt.timedelta(minutes=15)
    assert smart_lockout.standing("anna@example.com", HOME).locked_until == until
    assert smart_lockout.standing("anna@example.com", LAPTOP) == smart_lockout.Standing(None, False)
    assert smart_lockout.standing("other@example.com", HOME) == smart_lockout.Standing(None, False)


def test_a_familiar_device_is_only_the_one_whose_cookie_names_the_account(ctx):
    assert smart_lockout.source_of("acc1", device_id="d1", device_accounts=("acc1",), ip="192.0.2.1").familiar
    assert not smart_lockout.source_of("acc1", device_id="d1", device_accounts=("acc2",), ip="192.0.2.1").familiar
    assert not smart_lockout.source_of(None, device_id="d1", device_accounts=("acc1",), ip="192.0.2.1").familiar


@pytest.mark.config(LOCKOUT_DURATION=60, LOCKOUT_MAX_DURATION=300, LOCKOUT_MEMORY=3600)
def test_locks_double_up_to_the_ceiling_and_are_forgotten_after_a_quiet_while(ctx):
    lengths = []
    for _ in range(5):
        until = lock("anna@example.com", HOME)
        lengths.append((until - clock.now()).total_seconds())
        clock.freeze(until)
    assert lengths == [60, 120, 240, 300, 300]
    clock.advance(seconds=3601)
    assert smart_lockout.standing("anna@example.com", HOME) == smart_lockout.Standing(None, False)
    assert (lock("anna@example.com", HOME) - clock.now()).total_seconds() == 60


def test_the_captcha_comes_after_three_failures_and_stays_after_a_lock(ctx):
    for n in range(1, 5):
        smart_lockout.count_failure("anna@example.com", HOME)
        assert smart_lockout.standing("anna@example.com", HOME).needs_captcha == (n >= 3)
    until = smart_lockout.count_failure("anna@example.com", HOME)
    clock.freeze(until + dt.timedelta(seconds=1))
    assert smart_lockout.standing("anna@example.com", HOME) == smart_lockout.Standing(None, True)
    smart_lockout.succeeded("anna@example.com", HOME)
    assert smart_lockout.standing("anna@example.com", HOME) == smart_lockout.Standing(None, False)


def test_support_release_and_the_pruner(ctx):
    lock("anna@example.com", HOME)
    lock("anna@example.com", LAPTOP, times=2)
    lock("bob@example.com", HOME)
    db.session.commit()
    assert smart_lockout.locked_sources("anna@example.com") == 1
    assert prune.prune()["sign_in_sources"] == 0  # locked or remembered: kept
    clock.advance(hours=25)
    assert prune.prune()["sign_in_sources"] == 3
    lock("anna@example.com", HOME)
    assert smart_lockout.release("anna@example.com") == 1
    assert db.session.query(SignInSource).count() == 0
