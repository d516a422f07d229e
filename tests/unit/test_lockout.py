"""Lockout of accounts and connector users: five failures within the window lock for a while,
three lockouts in a row need support; the numbers are settings."""

from __future__ import annotations

import pytest

from idp import clock
from idp.services import lockout


def fail(principal, times):
    return [lockout.count_failure(principal) for _ in range(times)]


def test_the_fifth_failure_locks_for_fifteen_minutes(account):
    assert fail(account, 5) == [False, False, False, False, True]
    assert lockout.is_locked(account) and not lockout.until_support(account)
    clock.advance(minutes=14, seconds=59)
    assert lockout.is_locked(account)
    clock.advance(seconds=1)
    assert not lockout.is_locked(account)


def test_failures_outside_the_window_start_a_new_count(account):
    fail(account, 4)
    clock.advance(minutes=15, seconds=1)
    assert fail(account, 4) == [False] * 4
    assert not lockout.is_locked(account)
    assert lockout.count_failure(account) is True


def test_three_lockouts_in_a_row_only_support_ends(account):
    for _ in range(2):
        fail(account, 5)
        clock.advance(minutes=16)
    fail(account, 5)
    assert lockout.until_support(account)
    clock.advance(days=365)
    assert lockout.is_locked(account)
    lockout.unlock(account)
    assert not lockout.is_locked(account) and account.lockouts == 0


def test_a_success_clears_the_count(account):
    fail(account, 4)
    lockout.clear(account)
    assert fail(account, 4) == [False] * 4


@pytest.mark.config(LOCKOUT_AFTER_FAILURES=2, LOCKOUT_DURATION=60, LOCKOUTS_UNTIL_SUPPORT=2)
def test_the_numbers_come_from_the_settings(account):
    assert fail(account, 2) == [False, True]
    clock.advance(seconds=61)
    assert not lockout.is_locked(account)
    fail(account, 2)
    assert lockout.until_support(account)
