"""The client a request log line names from a Basic header (telemetry.requests) is the user
Werkzeug's ``Authorization.from_header`` reads, form-decoded; a malformed header names none."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import Authorization

from idp.telemetry.requests import claimed_client_id


def _werkzeug_s(header: str):
    try:
        auth = Authorization.from_header(header)
    except (ValueError, UnicodeError):
        return None
    if auth is None or auth.type != "basic" or not auth.username:
        return None
    return unquote(auth.username)[:100]


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


HEADERS = st.one_of(
    st.builds(_basic, st.text(max_size=120), st.text(max_size=10)),
    st.builds(lambda scheme, rest: f"{scheme} {rest}", st.sampled_from(["Basic", "basic", "BASIC", "Bearer", "Basic\t"]),
              st.text(max_size=30)),
    st.text(max_size=30),
)


@given(header=HEADERS)
def test_the_logged_client_is_werkzeug_s_basic_user(header):
    assert claimed_client_id({}, header) == _werkzeug_s(header)


def test_examples():
    assert claimed_client_id({}, _basic("payroll%20sync", "s")) == "payroll sync"
    assert claimed_client_id({}, "Basic \xa0") is None
    assert claimed_client_id({}, "Basic !!!") is None
    assert claimed_client_id({"client_id": "form"}, _basic("basic", "s")) == "form"
