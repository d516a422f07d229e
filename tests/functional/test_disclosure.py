"""Answers that do not tell what exists: forgotten password for known and unknown addresses, support routes."""

from __future__ import annotations


def test_forgot_password_twice_looks_the_same_for_known_and_unknown(app, browser, portal, person):
    import re

    answers = {}
    for email in (person["email"], "nobody@example.com"):
        statuses = []
        for _ in range(2):
            b = type(browser)(app)
            b.authorize(portal["client_id"])
            b.submit(email=email)
            href = re.search(r'id="forgot-password" href="([^"]+)"', b.text).group(1)
            b.get(href)
            b.submit()
            statuses.append((b.status, b.step_state))
        answers[email] = statuses
    assert answers[person["email"]] == answers["nobody@example.com"] == [(200, "forgot_code")] * 2


def test_support_routes_do_not_reveal_what_exists(app, client):
    fake = client.post("/support/invitations/does-not-exist/revoke", data={"reason": "x"})
    assert fake.status_code in (302, 400)
