"""The MAC of self-contained client-credentials tokens (oauth.machine_tokens) is HMAC-SHA256 as the
standard library computes it, whatever the key and the message."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from idp.oauth.machine_tokens import _Hmac, _mac, _unb64


@given(key=st.binary(min_size=1, max_size=200), message=st.binary(max_size=300))
def test_the_mac_is_hmac_sha256(key, message):
    assert _Hmac(key).digest(message) == hmac.digest(key, message, hashlib.sha256)


@given(message=st.text(max_size=200))
def test_a_token_s_mac_under_each_key(message):
    for key in (b"\x01" * 32, b"\x02" * 32, b"k" * 65):
        assert _unb64(_mac(message, key)) == hmac.digest(key, message.encode(), hashlib.sha256)
