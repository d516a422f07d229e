"""JSON written by hand or through a kept encoder reads as json.dumps and flask.json.dumps write it:
a client-credentials token's payload, the protocol endpoints' answers."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.oauth.machine_tokens import _payload_json

VALUES = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False),
                   st.lists(st.text(), max_size=2))


@given(st.dictionaries(st.sampled_from(["c", "s", "i", "e", "j", "k"]), VALUES))
def test_the_payload_is_json_dumps_compact(payload):
    assert _payload_json(payload) == json.dumps(payload, separators=(",", ":"))


@given(st.text(), st.text(), st.integers(), st.integers(), st.text())
def test_a_token_s_payload(client_id, scope, issued, expires, jti):
    payload = {"c": client_id, "s": scope, "i": issued, "e": expires, "j": jti}
    assert json.loads(_payload_json(payload)) == payload
    assert _payload_json(payload) == json.dumps(payload, separators=(",", ":"))


PAYLOADS = st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(), st.booleans(), st.none(),
                                                         st.lists(st.text(), max_size=2)), max_size=5)


@given(PAYLOADS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the context is only read
def test_a_json_answer_is_encoded_as_flask_encodes_it(ctx, payload):
    from flask import json as flask_json

    from idp.oauth.server import authorization

    response = authorization.handle_response(200, payload, [("Content-Type", "application/json")])
    assert response.get_data(as_text=True) == flask_json.dumps(payload)


def test_the_json_provider_s_settings_are_followed(ctx, app, monkeypatch):
    from flask import json as flask_json

    from idp.oauth.server import authorization

    monkeypatch.setattr(app.json, "sort_keys", False)
    monkeypatch.setattr(app.json, "ensure_ascii", False)
    payload = {"b": "é", "a": 1}
    assert authorization.handle_response(200, payload, []).get_data(as_text=True) == flask_json.dumps(payload) \
        == '{"b": "é", "a": 1}'


FLAT = st.dictionaries(st.text(max_size=8), st.one_of(st.text(), st.integers(), st.booleans(), st.none()), max_size=6)


@given(FLAT)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the context is only read
def test_a_flat_answer_is_written_byte_for_byte_as_flask_writes_it(ctx, payload):
    from flask import json as flask_json

    from idp.oauth.server import _json

    written = _json(payload)
    assert type(written) is bytes
    assert written == flask_json.dumps(payload).encode() == json.dumps(payload, sort_keys=True).encode()


@given(st.dictionaries(st.text(max_size=4), st.one_of(st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)),
                       min_size=1, max_size=3))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_an_answer_that_is_not_flat_is_the_encoder_s(ctx, payload):
    from flask import json as flask_json

    from idp.oauth.server import _json

    assert _json(payload) == flask_json.dumps(payload)
