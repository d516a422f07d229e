"""idp.kept.Kept: values kept per key, never more than its bound."""

from __future__ import annotations

from idp.kept import Kept


def test_a_kept_value_is_found_again_and_returned_when_kept():
    kept = Kept(limit=3)
    assert kept.keep("a", 1) == 1
    assert kept.get("a") == 1 and kept.get("b") is None


def test_it_never_holds_more_than_its_bound_and_keeps_the_newest():
    kept = Kept(limit=3)
    for n in range(10):
        kept.keep(n, n * n)
        assert len(kept) <= 3
        assert kept[n] == n * n
