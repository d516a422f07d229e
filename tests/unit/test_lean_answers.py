"""The lean path's answers (web/lean.py ``Answer``) send what Flask's response for the same JSON
sends: status line, headers (as ``Headers`` keeps them under add and set) and body."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from flask import Response
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from idp.web.lean import Answer, _AnswerHeaders, _answer, form_pairs

NAMES = st.sampled_from(["Content-Type", "content-type", "Cache-Control", "Pragma", "WWW-Authenticate", "X-A"])
VALUES = st.one_of(st.text(max_size=8), st.integers(min_value=0, max_value=999))
OPERATIONS = st.lists(st.tuples(st.sampled_from(["add", "set"]), NAMES, VALUES), max_size=12)


def _apply(headers, operations):
    for operation, name, value in operations:
        try:
            if operation == "add":
                headers.add(name, value)
            else:
                headers[name] = value
        except ValueError:
            yield "refused"
        else:
            yield None


@given(initial=st.lists(st.tuples(NAMES, st.text(alphabet="abc; =/", max_size=6)), max_size=4), operations=OPERATIONS)
def test_the_headers_change_as_werkzeug_s_do(initial, operations):
    ours, werkzeugs = _AnswerHeaders(initial), Headers(initial)
    assert list(_apply(ours, operations)) == list(_apply(werkzeugs, operations))
    assert ours.to_wsgi_list() == werkzeugs.to_wsgi_list()
    for name in ("content-type", "Pragma", "X-A", "Absent"):
        assert ours.get(name) == werkzeugs.get(name)
        assert (name in ours) == (name in werkzeugs)


@pytest.mark.parametrize("status", [200, 400, 401, 429, 503])
@pytest.mark.parametrize("payload", ['{"error": "invalid_client", "note": "caf\\u00e9 \u00e9"}',
                                     b'{"error": "invalid_client", "note": "caf\\u00e9"}'])
def test_an_answer_sends_what_flask_s_response_sends(status, payload):
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache"),
               ("WWW-Authenticate", 'Basic error="invalid_client"')]
    answer, response = _answer(payload, status, headers), Response(payload, status=status, headers=headers)
    assert isinstance(answer, Answer)
    assert answer.status == response.status and answer.status_code == response.status_code
    assert answer.headers.to_wsgi_list() == response.headers.to_wsgi_list()
    assert answer.body == response.get_data()
    assert answer.mimetype == response.mimetype == "application/json"


def test_an_answer_that_is_not_json_is_flask_s_response():
    assert isinstance(_answer("plain", 200, [("Cache-Control", "no-store")]), Response)
    assert isinstance(_answer([b"{}"], 200, [("Content-Type", "application/json")]), Response)


def test_a_value_with_a_line_break_is_refused():
    headers = _AnswerHeaders([])
    with pytest.raises(ValueError):
        headers.add("X-A", "one\r\nSet-Cookie: two")
    with pytest.raises(ValueError):
        headers["X-A"] = "one\ntwo"


@given(st.lists(st.sampled_from(["a", "b", "=", "&", "+", "%", "2", "B", "f", "é", " ", "%C3", "%A9", "%zz", "%2"]),
                max_size=20).map("".join) | st.text(max_size=20))
def test_the_form_is_parsed_as_parse_qsl_parses_it(text):
    assert form_pairs(text) == parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
