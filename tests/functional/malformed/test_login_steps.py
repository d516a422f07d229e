"""Malformed posts to the login flow: random flow ids, states, actions and fields."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from .strategies import (
    ACTIONS,
    FAST,
    FEWER,
    FLOW_IDS,
    SMALL_PAIRS,
    STEP_FIELDS,
    SUBMITTED_STATES,
    browser_at,
    form_body,
    placeholders,
    resolve,
    resolve_pairs,
    send,
)


# -- login flows -------------------------------------------------------------------------------------------


@FAST
@example(flow_id="/0", method="GET", pairs=[], with_csrf=False)  # "/login//0": not a redirect to the claimed host
@given(flow_id=FLOW_IDS, method=st.sampled_from(["GET", "POST"]), pairs=SMALL_PAIRS, with_csrf=st.booleans())
def test_login_pages_with_random_flow_ids(browser, portal, flow_id, method, pairs, with_csrf):
    if browser.page is None:
        browser.authorize(portal["client_id"])
    csrf = browser.page.forms["step"]["fields"]["csrf_token"]
    path = "/login/" + (quote(flow_id, safe="") or "x")
    if method == "GET":
        response = send(browser.http, "GET", path, query_string=form_body(pairs))
        assert response.status_code == 404, (path, response.status_code)
    else:
        fields = ([("csrf_token", csrf)] if with_csrf else []) + list(pairs)
        response = send(browser.http, "POST", path, data=form_body(fields), content_type="application/x-www-form-urlencoded")
        assert response.status_code in (400, 404, 413), (path, response.status_code)


@pytest.mark.parametrize("stage", ["email", "password", "verify_email", "email_code", "totp_enroll", "totp", "consent"])
@FEWER
@given(submitted=SUBMITTED_STATES, action=ACTIONS, fields=STEP_FIELDS, csrf=st.sampled_from(["real", "real", "real", "missing", "bogus"]),
       ours_first=st.booleans())
def test_login_steps_take_random_state_action_and_fields(app, portal, third_party, person, stage, submitted, action, fields,
                                                        csrf, ours_first):
    key = f"_browser_{stage}"
    b = app.extensions.get(key)
    if b is None:
        b = app.extensions[key] = browser_at(app, portal, third_party, person, stage)
        b.flow_action = b.page.forms["step"]["action"]
        b.csrf = b.page.forms["step"]["fields"]["csrf_token"]
    ctx = placeholders(portal, third_party, **{"{current}": stage})
    ours = []
    if csrf == "real":
        ours.append(("csrf_token", b.csrf))
    elif csrf == "bogus":
        ours.append(("csrf_token", "IjAwMCI.bogus"))
    if submitted is not None:
        ours.append(("state", resolve(submitted, ctx)))
    if action is not None:
        ours.append(("action", action))
    random_fields = resolve_pairs(fields, ctx)
    body = form_body(ours + random_fields if ours_first else random_fields + ours)
    response = send(b.http, "POST", b.flow_action, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 302, 303, 400, 401, 403, 404, 409, 410, 413, 423, 429), response.status_code
    send(b.http, "GET", b.flow_action)
