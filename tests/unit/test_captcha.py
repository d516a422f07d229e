"""The proof-of-work CAPTCHA: challenges are signed, expire after ten minutes, are
accepted once, and anything else the browser might post is refused without an error."""

from __future__ import annotations

import base64
import datetime as dt
import json

import altcha
import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from idp import clock
from idp.config import DEFAULTS
from idp.extensions import db
from idp.models.captcha import UsedCaptcha
from idp.services import captcha

# Low enough that solving in Python takes a fraction of a second.
pytestmark = pytest.mark.config(CAPTCHA_MAX_NUMBER=1000)


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield
        db.session.rollback()


def solve(challenge: dict) -> str:
    """What the widget posts: base64 JSON of the challenge and the solution."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=60)
    assert solution is not None
    return altcha.Payload(parsed, solution).to_base64()


def decode(payload: str) -> dict:
    return json.loads(base64.b64decode(payload))


def encode(data) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def used_count() -> int:
    return db.session.scalar(select(func.count()).select_from(UsedCaptcha))


def test_challenge_is_json_for_the_widget(ctx, app):
    challenge = captcha.new_challenge()
    assert json.loads(json.dumps(challenge)) == challenge
    params = challenge["parameters"]
    assert params["algorithm"] == captcha.ALGORITHM == "PBKDF2/SHA-256"
    assert params["cost"] == current_app.config["CAPTCHA_COST"] == 1000
    assert {"nonce", "salt", "keyPrefix", "keyLength"} <= params.keys()
    assert abs(params["expiresAt"] - (clock.timestamp() + 600)) <= 2
    assert len(challenge["signature"]) == 64
    # Every challenge is new.
    assert captcha.new_challenge()["signature"] != challenge["signature"]


def test_counter_stays_below_max_number(ctx):
    counters = {decode(solve(captcha.new_challenge()))["solution"]["counter"] for _ in range(5)}
    assert all(0 <= c < 1000 for c in counters)


@pytest.mark.config(CAPTCHA_MAX_NUMBER=1)
def test_max_number_is_configurable(ctx):
    assert decode(solve(captcha.new_challenge()))["solution"]["counter"] == 0


def test_default_max_number(app):
    app.config.pop("CAPTCHA_MAX_NUMBER")
    with app.app_context():
        assert captcha._max_number() == DEFAULTS["CAPTCHA_MAX_NUMBER"] == 8000


def test_valid_solution_is_accepted_once(ctx):
    payload = solve(captcha.new_challenge())
    assert captcha.verify(payload) is True
    # Refused again in the same transaction ...
    assert captcha.verify(payload) is False
    db.session.commit()
    assert used_count() == 1
    # ... and after it was committed.
    assert captcha.verify(payload) is False


def test_replay_is_refused_in_a_later_request(app):
    with app.test_request_context():
        payload = solve(captcha.new_challenge())
        assert captcha.verify(payload)
        db.session.commit()
    with app.test_request_context():
        assert captcha.verify(payload) is False
    # Not even with the base64 padded or wrapped differently.
    with app.test_request_context():
        assert captcha.verify(payload[:40] + "\n" + payload[40:]) is False


def test_concurrent_replay_is_refused(ctx, monkeypatch):
    """Two requests with the same solution: the one whose insert conflicts loses."""
    payload = solve(captcha.new_challenge())
    assert captcha.verify(payload)
    db.session.commit()
    # The second request did not see the first one's row when it looked.
    monkeypatch.setattr(db.session, "scalar", lambda *a, **kw: None)
    assert captcha.verify(payload) is False
    monkeypatch.undo()
    db.session.commit()  # the session is still usable
    assert used_count() == 1


def test_two_solutions_are_each_accepted(ctx):
    first, second = solve(captcha.new_challenge()), solve(captcha.new_challenge())
    assert captcha.verify(first) and captcha.verify(second)


def test_expired_by_the_system_clock(ctx):
    clock.freeze(clock.now() - dt.timedelta(minutes=11))
    challenge = captcha.new_challenge()
    clock.freeze(None)
    assert captcha.verify(solve(challenge)) is False
    assert used_count() == 0


def test_expired_by_our_clock(ctx):
    clock.freeze(clock.now())
    payload = solve(captcha.new_challenge())
    clock.advance(minutes=10)
    assert captcha.verify(payload) is False
    clock.advance(minutes=-1)
    assert captcha.verify(payload) is True


def test_expired_rows_are_purged(ctx):
    now = clock.now()
    db.session.add(UsedCaptcha(signature="a" * 64, expires_at=now - dt.timedelta(seconds=1)))
    db.session.add(UsedCaptcha(signature="b" * 64, expires_at=now + dt.timedelta(minutes=5)))
    db.session.commit()
    payload = solve(captcha.new_challenge())
    assert captcha.verify(payload)
    db.session.commit()
    left = set(db.session.scalars(select(UsedCaptcha.signature)))
    assert left == {"b" * 64, decode(payload)["challenge"]["signature"]}
    row = db.session.get(UsedCaptcha, decode(payload)["challenge"]["signature"])
    expected = dt.datetime.fromtimestamp(decode(payload)["challenge"]["parameters"]["expiresAt"], dt.UTC)
    assert row.expires_at == expected.replace(tzinfo=None)


def _tampered(payload: str, change) -> str:
    data = decode(payload)
    change(data)
    return encode(data)


TAMPERINGS = {
    "counter": lambda d: d["solution"].update(counter=d["solution"]["counter"] + 1),
    "derived key": lambda d: d["solution"].update(derivedKey="00" * 32),
    "key prefix": lambda d: d["challenge"]["parameters"].update(keyPrefix="00"),
    "cost": lambda d: d["challenge"]["parameters"].update(cost=1),
    "algorithm": lambda d: d["challenge"]["parameters"].update(algorithm="SHA-256"),
    "later expiry": lambda d: d["challenge"]["parameters"].update(expiresAt=clock.timestamp() + 3600),
    "no expiry": lambda d: d["challenge"]["parameters"].pop("expiresAt"),
    "signature": lambda d: d["challenge"].update(signature="0" * 64),
    "no signature": lambda d: d["challenge"].pop("signature"),
    "counter as text": lambda d: d["solution"].update(counter=str(d["solution"]["counter"])),
}


@pytest.mark.parametrize("change", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_payload_is_refused(ctx, change):
    payload = solve(captcha.new_challenge())
    assert captcha.verify(_tampered(payload, change)) is False
    assert used_count() == 0
    assert captcha.verify(payload) is True  # the genuine one still works


def test_challenge_signed_with_another_key_is_refused(ctx):
    foreign = altcha.create_challenge(
        captcha.ALGORITHM, current_app.config["CAPTCHA_COST"], counter=3, expires_at=clock.timestamp() + 600, hmac_secret=b"another key"
    )
    assert captcha.verify(solve(foreign.to_dict())) is False


def test_unsigned_challenge_is_refused(ctx):
    unsigned = altcha.create_challenge(captcha.ALGORITHM, current_app.config["CAPTCHA_COST"], counter=3, expires_at=clock.timestamp() + 600)
    assert captcha.verify(solve(unsigned.to_dict())) is False


def test_key_follows_the_secret(app):
    with app.app_context():
        payload = solve(captcha.new_challenge())
    app.config["SECRET_KEY"] = "another-secret-key-that-is-long-enough-9876543210"
    with app.app_context():
        assert captcha.verify(payload) is False


GARBAGE = [
    "",
    " ",
    "altcha",
    "not base64 at all!",
    "====",
    "ééé",
    "\x00\x01",
    base64.b64encode(b"\xff\xfe\xfd").decode(),
    base64.b64encode(b"not json").decode(),
    encode(None),
    encode([]),
    encode("text"),
    encode(42),
    encode({}),
    encode({"challenge": None, "solution": None, "test": True}),  # the widget's test mode
    encode({"challenge": 1, "solution": "x"}),
    encode({"challenge": {"parameters": None}, "solution": {}}),
    encode({"challenge": {"parameters": [], "signature": 5}, "solution": []}),
    encode({
        "challenge": {"parameters": {"algorithm": 1, "nonce": 2, "salt": 3, "cost": "x"}},
        "solution": {"counter": 1, "derivedKey": 2},
    }),
    encode({"algorithm": "SHA-256", "challenge": "00", "number": 1, "salt": "x", "signature": "00"}),  # the old format
    "A" * 100_000,
    encode({"x": "y" * 10_000}),
]


@pytest.mark.parametrize("payload", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_refused(ctx, payload):
    assert captcha.verify(payload) is False


@pytest.mark.parametrize("payload", [None, 123, b"bytes", {"a": 1}, ["x"]], ids=repr)
def test_not_a_string_is_refused(ctx, payload):
    assert captcha.verify(payload) is False


def test_wrong_types_around_a_real_challenge_are_refused(ctx):
    genuine = decode(solve(captcha.new_challenge()))
    solutions = [("counter", None), ("counter", -1), ("counter", 2**40), ("counter", 1.5), ("counter", True),
                 ("derivedKey", None), ("derivedKey", 123), ("derivedKey", "zz"), ("derivedKey", "abc")]
    for field, value in solutions:
        data = json.loads(json.dumps(genuine))
        data["solution"][field] = value
        assert captcha.verify(encode(data)) is False, (field, value)
    for field, value in [("nonce", "zz"), ("salt", None), ("expiresAt", "soon"), ("expiresAt", None), ("cost", -1)]:
        data = json.loads(json.dumps(genuine))
        data["challenge"]["parameters"][field] = value
        assert captcha.verify(encode(data)) is False, (field, value)
    assert used_count() == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
shaped = st.fixed_dictionaries(
    {"challenge": st.fixed_dictionaries({"parameters": json_values, "signature": json_values}), "solution": json_values}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.text(max_size=200) | json_values.map(encode) | shaped.map(encode))
def test_arbitrary_input_never_raises(ctx, payload):
    assert captcha.verify(payload) is False
