"""The security headers (web/headers.py ``security_headers``) are what they were before answers
without a nonce and form targets took a list made once: for every mix of headers already
present, page kinds, nonce and form targets, on Flask's responses and the lean path's answers."""

from __future__ import annotations

import pytest
from flask import Response, current_app, g
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.web import headers
from idp.web.lean import Answer


def _reference(response):
    """``security_headers`` as it was written before: each header decided one by one."""
    present = {key.lower() for key, _ in response.headers}
    html = response.mimetype == "text/html"
    if "content-security-policy" not in present:
        nonce = headers.csp_nonce() if html else g.get("csp_nonce")
        targets = g.get("form_targets")
        response.headers.add("Content-Security-Policy", headers._csp(nonce, targets))
    for name, value in (("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                        ("Referrer-Policy", "no-referrer"), ("Cross-Origin-Opener-Policy", "same-origin")):
        if name.lower() not in present:
            response.headers.add(name, value)
    if "strict-transport-security" not in present and current_app.config["ISSUER"].startswith("https://"):
        response.headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if html and "cache-control" not in present:
        response.headers.add("Cache-Control", "no-store")
    return response


PRESENT = st.lists(st.sampled_from([
    ("Content-Security-Policy", "default-src 'none'"), ("X-Frame-Options", "SAMEORIGIN"),
    ("x-content-type-options", "nosniff"), ("Referrer-Policy", "origin"), ("Cross-Origin-Opener-Policy", "unsafe-none"),
    ("Strict-Transport-Security", "max-age=1"), ("Cache-Control", "no-cache"), ("Pragma", "no-cache"),
    ("WWW-Authenticate", 'Basic error="invalid_client"'),
]), max_size=4, unique=True)


def _made(kind, mimetype, present):
    content_type = [("Content-Type", mimetype)] if mimetype else []
    if kind == "answer":
        return Answer('{"active": false}', 200, content_type + present)
    return Response("{}", status=200, headers=content_type + present)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["answer", "response"]),
       mimetype=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/html; charset=utf-8",
                                 None]),
       present=PRESENT, issuer=st.sampled_from(["http://idp.test", "https://idp.example"]),
       nonce=st.sampled_from([None, "", "bm9uY2Utb2YtdGhpcy1wYWdl"]),
       targets=st.sampled_from([None, [], ["https://app.example"]]))
def test_the_headers_are_those_decided_one_by_one(app, kind, mimetype, present, issuer, nonce, targets):
    if kind == "answer" and not mimetype:
        mimetype = "application/json"  # the lean path answers JSON only
    app.config["ISSUER"] = issuer
    sent = []
    for decide in (headers.security_headers, _reference):
        with app.app_context():
            if nonce is not None:
                g.csp_nonce = nonce
            if targets is not None:
                g.form_targets = targets
            sent.append(decide(_made(kind, mimetype, present)).headers.to_wsgi_list())
            made = g.get("csp_nonce")
            if nonce is None and made:  # a page's fresh nonce: named alike in both
                sent[-1] = [(name, value.replace(made, "NONCE")) for name, value in sent[-1]]
    assert sent[0] == sent[1]


@pytest.mark.parametrize("issuer", ["http://idp.test", "https://idp.example"])
def test_a_protocol_answer_s_headers(app, issuer):
    app.config["ISSUER"] = issuer
    with app.app_context():
        answer = headers.security_headers(_made("answer", "application/json", []))
    expected = [
        ("Content-Type", "application/json"), ("Content-Length", "17"),
        ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
        ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    if issuer.startswith("https://"):
        expected.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    assert answer.headers.to_wsgi_list() == expected
    assert [name.lower() for name, _ in expected] == [key for key in answer.headers._keys]


def test_known_headers_refuse_a_line_break():
    with pytest.raises(ValueError):
        headers.KnownHeaders([("X-A", "one\r\nSet-Cookie: two")])
    with pytest.raises(ValueError):
        headers.KnownHeaders([("X-A", 1)])
    assert headers.KnownHeaders([("X-A", "b")]).lower_names == ("x-a",)
