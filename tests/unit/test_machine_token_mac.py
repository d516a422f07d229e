"""The MAC of self-contained client-credentials tokens (oauth.machine_tokens) is HMAC-SHA256 as the
standard library computes it, whatever the key and the message (``crypto.Hmac``: test_hmac.py)."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from idp.oauth.machine_tokens import _mac, _unb64


@given(message=st.text(max_size=200))
def test_a_token_s_mac_under_each_key(message):
    for key in (b"\x01" * 32, b"\x02" * 32, b"k" * 65):
        assert _unb64(_mac(message, key)) == hmac.digest(key, message.encode(), hashlib.sha256)
