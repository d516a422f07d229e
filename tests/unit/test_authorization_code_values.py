"""The values of authorization codes: as long as Authlib's, random, URL-safe."""

from __future__ import annotations

import random
import re

from idp.oauth.grants import AuthorizationCodeGrant


def test_a_code_is_48_url_safe_characters_none_drawn_one_by_one(monkeypatch):
    def one_by_one(*_args, **_kwargs):
        raise AssertionError("a character drawn with random.SystemRandom")

    monkeypatch.setattr(random.SystemRandom, "choice", one_by_one)
    grant = AuthorizationCodeGrant.__new__(AuthorizationCodeGrant)  # the method reads no request
    codes = {grant.generate_authorization_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{48}", code) for code in codes)
    assert grant.AUTHORIZATION_CODE_LENGTH == 48
