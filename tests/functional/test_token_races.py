"""Concurrent redemptions: a code or a refresh token raced by four clients gives exactly one answer."""

from __future__ import annotations

import threading

from tests.helpers import FULL, exchange_code, refresh, signed_in_browser, tokens_for


def test_racing_redemptions_of_one_code_get_one_token(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    results = []
    barrier = threading.Barrier(4)

    def redeem():
        http = app.test_client()
        barrier.wait()
        results.append(exchange_code(http, portal, b.first_code, b.verifier).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400, 400, 400]


def test_racing_refreshes_get_one_new_token(app, browser, portal, person):
    b = signed_in_browser(browser, portal, person)
    body = tokens_for(b, portal, scope=FULL)
    results = []
    barrier = threading.Barrier(4)

    def use():
        http = app.test_client()
        barrier.wait()
        results.append(refresh(http, portal, body["refresh_token"]).status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400, 400, 400], results  # exactly one new token
