"""The login benchmark's accounts get passwords the password policy accepts."""

import importlib.util
import sys
from pathlib import Path

from idp.services import password_policy

_BENCH = Path(__file__).resolve().parents[2] / "bench"
_SPEC = importlib.util.spec_from_file_location("bench_tokens", _BENCH / "tokens.py")
bench_tokens = sys.modules["bench_tokens"] = importlib.util.module_from_spec(_SPEC)  # dataclasses look it up
sys.path.append(str(_BENCH))  # for its sibling process_memory, after everything else
try:
    _SPEC.loader.exec_module(bench_tokens)
finally:
    sys.path.remove(str(_BENCH))


def test_bench_passwords_hold_no_part_of_the_address_or_name():
    run_tag = "a1b2c3"
    for i in (0, 7, 12, 100, 123, 555, 999):
        for _ in range(200):  # "123" turns up in about one random password in 150
            password = bench_tokens.impersonal_password(run_tag, i)
            verdict = password_policy.check(password, None, email=f"bench-{run_tag}-{i}@example.com", name=f"Bench {i}")
            assert verdict.rules["not_personal"], password
            assert verdict.rules["length"], password
