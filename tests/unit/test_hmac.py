"""HMAC-SHA256 with the padded keys hashed once (services/crypto.py ``Hmac``, ``hmac_sha256``) is HMAC
as RFC 4231 and the standard library compute it, and what the keyed hashes of short codes and the
DPoP nonces are made with."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.oauth import dpop
from idp.services import crypto

# RFC 4231 section 4: test cases 1, 2, 3, 4, 6 and 7 (5 is a truncated output), key, data, HMAC-SHA256.
RFC_4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. The key "
                    b"needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC_4231)
def test_the_rfc_4231_vectors(key, data, expected):
    assert crypto.Hmac(key).digest(data).hex() == expected
    assert crypto.hmac_sha256(key, data).hex() == expected


@given(key=st.binary(min_size=1, max_size=200), message=st.binary(max_size=300))
def test_the_mac_is_hmac_sha256(key, message):
    assert crypto.Hmac(key).digest(message) == hmac.digest(key, message, hashlib.sha256)
    assert crypto.hmac_sha256(key, message) == hmac.digest(key, message, hashlib.sha256)


def test_many_keys_in_turn():
    """The kept MACs are cleared when there are many keys, and still answer for each."""
    for round_ in range(2):
        for i in range(100):
            key = i.to_bytes(2, "big") * 16
            assert crypto.hmac_sha256(key, b"m") == hmac.digest(key, b"m", hashlib.sha256), (round_, i)


def test_keyed_hashes_and_nonces_are_hmac_sha256(ctx, app):
    key = crypto.derive_key("email-code")
    assert crypto.keyed_hash("123456", "email-code") == hmac.new(key, b"123456", hashlib.sha256).hexdigest()
    stored = crypto.keyed_hash("123456", "email-code")
    assert crypto.keyed_hash_matches(stored, "123456", "email-code")
    assert not crypto.keyed_hash_matches(stored, "123457", "email-code")
    app.config["PREVIOUS_SECRET_KEYS"] = [app.config["SECRET_KEY"]]
    app.config["SECRET_KEY"] = "another-secret-key-that-is-long-enough-0123456789"
    assert crypto.keyed_hash("123456", "email-code") != stored
    assert crypto.keyed_hash_matches(stored, "123456", "email-code")  # made under the previous secret

    nonce = dpop.nonce()
    period, _, mac = nonce.partition(".")
    expected = hmac.new(crypto.derive_key(dpop.NONCE_PURPOSE), f"dpop-nonce:{period}".encode(), hashlib.sha256)
    assert mac == dpop._b64(expected.digest()[:16])
    assert dpop._nonce_current(nonce)
