"""The login benchmark's accounts get passwords the password policy accepts."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

from idp.services import password_policy

_BENCH = Path(__file__).resolve().parents[2] / "bench"
_SPEC = importlib.util.spec_from_file_location("bench_tokens", _BENCH / "tokens.py")
bench_tokens = sys.modules["bench_tokens"] = importlib.util.module_from_spec(_SPEC)  # dataclasses look it up
sys.path.append(str(_BENCH))  # for its sibling process_memory, after everything else
try:
    _SPEC.loader.exec_module(bench_tokens)
finally:
    sys.path.remove(str(_BENCH))

RUN_TAG = "a1b2c3"


def _accepted(password: str, i: int) -> bool:
    verdict = password_policy.check(password, None, email=f"bench-{RUN_TAG}-{i}@example.com", name=f"Bench {i}")
    return verdict.rules["not_personal"] and verdict.rules["length"]


def test_a_random_password_holding_part_of_the_address_or_name_is_drawn_again(monkeypatch):
    drawn = iter(["Xy7-123-Qq_plmokn9Ab4Rt2Z",  # account 123's number
                  "zzBENCHzz_k3J8mW2pQv5rT0",  # the name, in capitals
                  "q9-A1B2C3-Lm4Np7Rs0Tu2Wx",  # the run's tag
                  "Zp4-Kq8_Wm2Rt6Yx0Bn3Vc7H"])
    # The benchmark's own name for the module, not the module: nothing else draws from these.
    monkeypatch.setattr(bench_tokens, "secrets", SimpleNamespace(token_urlsafe=lambda nbytes: next(drawn)))
    password = bench_tokens.impersonal_password(RUN_TAG, 123)
    assert password == "Zp4-Kq8_Wm2Rt6Yx0Bn3Vc7H"
    assert _accepted(password, 123)
    assert not _accepted("Xy7-123-Qq_plmokn9Ab4Rt2Z", 123)  # what the policy would have refused


def test_the_benchmark_passwords_are_accepted_by_the_policy():
    for i in (0, 7, 12, 100, 123, 999):
        for _ in range(20):
            assert _accepted(bench_tokens.impersonal_password(RUN_TAG, i), i)
