"""The login benchmark's accounts get passwords the password policy accepts."""

from pathlib import Path
from types import SimpleNamespace

from idp.services import password_policy
from tests.helpers import load_script

bench_tokens = load_script(Path(__file__).resolve().parents[2] / "bench" / "tokens.py", "bench_tokens")

EMAIL, NAME = "bench-a1b2c3-123@example.com", "Bench 123"


def _accepted(password: str) -> bool:
    return password_policy.check(password, None, email=EMAIL, name=NAME).ok


def test_a_random_password_the_policy_refuses_is_drawn_again(monkeypatch):
    refused = ["Xy7-123-Qq_plmokn9Ab4Rt2Z",  # the account's number
               "zzBENCHzz_k3J8mW2pQv5rT0",  # the name, in capitals
               "q9-A1B2C3-Lm4Np7Rs0Tu2Wx",  # the run's tag
               "short"]
    drawn = iter([*refused, "Zp4-Kq8_Wm2Rt6Yx0Bn3Vc7H"])
    # The benchmark's own name for the module, not the module: nothing else draws from these.
    monkeypatch.setattr(bench_tokens, "secrets", SimpleNamespace(token_urlsafe=lambda nbytes: next(drawn)))
    assert not any(_accepted(password) for password in refused)
    assert bench_tokens.accepted_password(EMAIL, NAME) == "Zp4-Kq8_Wm2Rt6Yx0Bn3Vc7H"


def test_the_benchmark_passwords_are_accepted_by_the_policy():
    for _ in range(50):
        assert _accepted(bench_tokens.accepted_password(EMAIL, NAME))
