"""Malformed input at every endpoint: query strings, form bodies, content types, oversized
bodies, odd methods, bogus Authorization headers, NUL bytes."""

from __future__ import annotations

import io
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.helpers import basic

from .strategies import (
    ALL_PATHS,
    AUTH_HEADERS,
    FAST,
    FEWER,
    FLOW_IDS,
    GET_ONLY_PATHS,
    GET_PATHS,
    MAX_BODY,
    MORE,
    NAMELESS_PART,
    ODD_BODIES,
    OVERSIZED,
    PAIRS,
    PARAM_NAMES,
    POST_PATHS,
    RAW_QUERY,
    SMALL_PAIRS,
    check,
    form_body,
    placeholders,
    resolve,
    resolve_pairs,
    resolve_path,
    send,
    token_error,
)


# -- query strings and form bodies ----------------------------------------------------------


@FAST
@example(path="/authorize", pairs=[("response_type", "\x1f")], flow_id="x")
@given(path=st.sampled_from(GET_PATHS), pairs=PAIRS, flow_id=FLOW_IDS)
def test_get_endpoints_take_any_query_parameters(client, portal, path, pairs, flow_id):
    ctx = placeholders(portal)
    send(client, "GET", resolve_path(path, flow_id), query_string=form_body(resolve_pairs(pairs, ctx)))


@FAST
@given(path=st.sampled_from(GET_PATHS), raw=RAW_QUERY)
def test_get_endpoints_take_undecodable_query_strings(client, portal, path, raw):
    send(client, "GET", resolve_path(path, "x"), query_string=raw)


@MORE
@example(path="/authorize", pairs=[("response_type", "\x1f")], query=[], flow_id="x")
@given(path=st.sampled_from(POST_PATHS), pairs=PAIRS, query=SMALL_PAIRS, flow_id=FLOW_IDS)
def test_post_endpoints_take_any_form_body(client, portal, path, pairs, query, flow_id):
    ctx = placeholders(portal)
    body = form_body(resolve_pairs(pairs, ctx))
    response = send(
        client, "POST", resolve_path(path, flow_id),
        query_string=form_body(resolve_pairs(query, ctx)),
        data=body, content_type="application/x-www-form-urlencoded",
    )
    if len(body) > MAX_BODY and path != "/userinfo":  # /userinfo: see test_oversized_bodies_answer_413
        assert response.status_code == 413, (path, len(body), response.status_code)


@FAST
@given(path=st.sampled_from(POST_PATHS), content=ODD_BODIES)
def test_post_endpoints_take_wrong_content_types(client, portal, path, content):
    content_type, body = content
    headers = {"Content-Type": content_type} if content_type else {}
    response = send(client, "POST", resolve_path(path, "x"), data=body, headers=headers)
    if path == "/token":
        token_error(response, False, f"POST /token {content_type!r} {body[:200]!r}")


@FEWER
@example(path="/login/{random_flow}", pairs=[("\n", "")], file_field="response_type", file_body=b"")
@given(path=st.sampled_from(POST_PATHS), pairs=SMALL_PAIRS, file_field=st.sampled_from(PARAM_NAMES), file_body=st.binary(max_size=200))
def test_post_endpoints_take_multipart_bodies(client, portal, path, pairs, file_field, file_body):
    ctx = placeholders(portal)
    data = {}
    for key, value in resolve_pairs(pairs, ctx):
        data.setdefault(key, []).append(value)
    data[file_field] = (io.BytesIO(file_body), "x.bin")
    response = send(client, "POST", resolve_path(path, "x"), data=data, content_type="multipart/form-data")
    if path == "/token":
        token_error(response, False, f"multipart POST /token {data!r}")


@pytest.mark.parametrize("path", POST_PATHS)
def test_many_fields_are_refused_or_ignored(client, portal, path):
    pairs = [(f"k{i}[]", str(i)) for i in range(3000)] + [("grant_type", "client_credentials")]
    body = form_body(pairs)
    assert len(body) < MAX_BODY
    send(client, "POST", resolve_path(path, "x"), data=body, content_type="application/x-www-form-urlencoded")
    data = {f"k{i}": "v" for i in range(1500)}
    send(client, "POST", resolve_path(path, "x"), data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("content_type,body", OVERSIZED, ids=[c.split(";")[0] for c, _ in OVERSIZED])
@pytest.mark.parametrize("path", POST_PATHS)
def test_oversized_bodies_answer_413(client, path, content_type, body):
    assert len(body) > MAX_BODY
    response = send(client, "POST", resolve_path(path, "x"), data=body, content_type=content_type)
    assert response.status_code == 413, (path, content_type, response.status_code, response.get_data()[:300])


@pytest.mark.parametrize("path", ["/login/{flow}", "/authorize", "/logout"])
def test_oversized_body_on_a_live_login_flow_answers_413(browser, portal, path):
    browser.authorize(portal["client_id"])
    assert browser.step_state == "email"
    flow_path = urlsplit(browser.page.forms["step"]["action"]).path
    csrf = browser.page.forms["step"]["fields"]["csrf_token"]
    target = flow_path if path.startswith("/login/") else path
    body = form_body([("csrf_token", csrf), ("state", "email"), ("email", "a" * MAX_BODY)])
    response = send(browser.http, "POST", target, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413, (target, response.status_code)


@pytest.mark.parametrize("path", POST_PATHS)
def test_oversized_chunked_body_without_length_answers_413(client, path):
    """A chunked body has no Content-Length. gunicorn (``idp serve``) marks its input
    as terminated, so the limit has to hold while reading, not be cut off silently."""
    body = b"grant_type=client_credentials&scope=" + b"a" * (2 * MAX_BODY)
    builder = EnvironBuilder(path=resolve_path(path, "x"), method="POST", data=body,
                             content_type="application/x-www-form-urlencoded")
    environ = builder.get_environ()
    del environ["CONTENT_LENGTH"]
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input_terminated"] = True
    try:
        response = client.open(Request(environ))
    except Exception as exc:
        raise AssertionError(f"chunked POST {path} -> unhandled {exc!r}") from exc
    check(response, f"chunked POST {path}")
    assert response.status_code == 413, (path, response.status_code)


def test_body_at_the_limit_is_read(client, portal):
    prefix = b"grant_type=authorization_code&code=x&scope="
    body = prefix + b"a" * (MAX_BODY - len(prefix))
    assert len(body) == MAX_BODY
    response = send(client, "POST", "/token", data=body, content_type="application/x-www-form-urlencoded",
                    headers=basic(portal))
    token_error(response, True, "POST /token at exactly 64 KiB")


@pytest.mark.parametrize("header", ["Basic \xa0", "\xa0 Basic", "Basic \x85", "Bearer \xa0", " "])
@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/par"])
def test_blank_basic_credentials_are_an_invalid_client(client, path, header):
    data = {"grant_type": "client_credentials", "token": "x"}
    response = send(client, "POST", path, data=data, headers={"Authorization": header})
    token_error(response, True, f"POST {path} Authorization={header!r}")


def test_multipart_part_without_a_name_on_a_login_page(browser, portal):
    send(browser.http, "POST", "/login/no-such-flow", data=NAMELESS_PART, content_type="multipart/form-data; boundary=xyz")
    browser.authorize(portal["client_id"])
    flow_path = urlsplit(browser.page.forms["step"]["action"]).path
    response = send(browser.http, "POST", flow_path, data=NAMELESS_PART, content_type="multipart/form-data; boundary=xyz")
    assert response.status_code == 400


# -- methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "BREW"])
@pytest.mark.parametrize("path", ALL_PATHS)
def test_odd_methods_answer_405(client, path, method):
    response = send(client, method, resolve_path(path, "x"), data=b"a=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 405, (method, path, response.status_code)


@pytest.mark.parametrize("path", ALL_PATHS)
def test_405_names_the_allowed_methods(client, path):
    """RFC 9110 15.5.6: a 405 response must carry an Allow header."""
    response = send(client, "PUT", resolve_path(path, "x"))
    assert response.status_code == 405
    allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
    assert allow, f"PUT {path} -> 405 without an Allow header"
    assert "PUT" not in allow and ("GET" in allow or "POST" in allow), allow


@pytest.mark.parametrize("path", GET_ONLY_PATHS)
def test_post_to_get_only_endpoints_answers_405(client, path):
    response = send(client, "POST", path, data={"a": "b"})
    assert response.status_code == 405, (path, response.status_code)


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ALL_PATHS)
def test_head_and_options_do_not_fail(client, path, method):
    send(client, method, resolve_path(path, "x"))


@FEWER
@given(segments=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_random_paths_do_not_fail(client, segments):
    path = "/" + "/".join(quote(s, safe="") for s in segments)
    response = send(client, "GET", path)
    assert response.status_code in (200, 302, 308) or 400 <= response.status_code < 500, (path, response.status_code)


# -- Authorization headers ---------------------------------------------------------------------------


@MORE
@example(path="/introspect", method="POST", header="Basic \xa0", pairs=[])
@example(path="/token", method="POST", header="\xa0 Basic", pairs=[("grant_type", "client_credentials")])
@given(path=st.sampled_from(POST_PATHS + ["/userinfo", "/authorize", "/logout"]), method=st.sampled_from(["GET", "POST"]),
       header=AUTH_HEADERS, pairs=SMALL_PAIRS)
def test_bogus_authorization_headers(client, portal, path, method, header, pairs):
    ctx = placeholders(portal)
    header = resolve(header, ctx)
    if method == "GET" and path not in GET_PATHS:
        method = "POST"
    body = form_body(resolve_pairs(pairs, ctx))
    kw = {"headers": {"Authorization": header}}
    if method == "POST":
        kw.update(data=body, content_type="application/x-www-form-urlencoded")
    else:
        kw.update(query_string=body)
    response = send(client, method, resolve_path(path, "x"), **kw)
    if path == "/token":
        token_error(response, True, f"POST /token Authorization={header!r} body={body[:300]!r}")
    if path == "/userinfo" and header != ctx.get("{client_basic}"):
        assert response.status_code in (400, 401), (header, response.status_code, response.get_data()[:300])
    if path in ("/introspect", "/revoke") and response.status_code >= 400:
        assert response.mimetype == "application/json" and "error" in response.get_json(), response.get_data()[:300]


@pytest.mark.parametrize("path,method", [("/authorize?client_id=%00&response_type=code", "GET"),
                                          ("/token", "POST")])
def test_nul_bytes_get_a_clean_answer(client, portal, path, method):
    """PostgreSQL cannot compare with a NUL character; SQLite can: either way, no 500."""
    data = {"grant_type": "client_credentials", "client_id": "\x00", "client_secret": "x"} if method == "POST" else None
    response = client.open(path, method=method, data=data)
    assert 400 <= response.status_code < 500
    if method == "POST":
        assert response.get_json()["error"] in ("invalid_request", "invalid_client")
