"""Keys derived from the app secret during a rotation: the previous secret still opens and
verifies, the current one makes everything new."""

from __future__ import annotations

import base64
import os

import altcha
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from idp.services import captcha, crypto

pytestmark = pytest.mark.config(CAPTCHA_MAX_NUMBER=200)
NEW = "the-new-secret-after-rotation-0123456789abcdef"


def rotate(new: str = NEW, keep_previous: bool = True) -> None:
    old = current_app.config["SECRET_KEY"]
    current_app.config["SECRET_KEY"] = new
    current_app.config["PREVIOUS_SECRET_KEYS"] = [old] if keep_previous else []


def test_a_value_encrypted_before_rotation_opens_after_it_and_names_its_key(ctx):
    sealed = crypto.encrypt(b"JBSWY3DPEHPK3PXP", "totp-secret")
    old_id = crypto.current_key_id("totp-secret")
    rotate()
    assert crypto.decrypt(sealed, "totp-secret") == b"JBSWY3DPEHPK3PXP"
    assert crypto.blob_key_id(sealed) == old_id and not crypto.is_current(sealed, "totp-secret")
    resealed = crypto.encrypt(b"JBSWY3DPEHPK3PXP", "totp-secret")
    assert crypto.blob_key_id(resealed) == crypto.current_key_id("totp-secret") != old_id
    current_app.config["PREVIOUS_SECRET_KEYS"] = []
    with pytest.raises(crypto.UndecryptableError):
        crypto.decrypt(sealed, "totp-secret")
    assert crypto.decrypt(resealed, "totp-secret") == b"JBSWY3DPEHPK3PXP"


def test_values_written_before_key_ids_existed_are_still_read(ctx):
    # The earlier layout: nonce | ciphertext, additional data the purpose alone.
    nonce = os.urandom(12)
    legacy = nonce + AESGCM(crypto.derive_key("signing-key")).encrypt(nonce, b'{"kty":"RSA"}', b"signing-key")
    text = base64.b64encode(legacy).decode()
    rotate()
    assert crypto.decrypt_text(text, "signing-key") == '{"kty":"RSA"}'
    assert not crypto.is_current_text(text, "signing-key")


@pytest.fixture
def live_clock(app):
    # The CAPTCHA library checks expiry against the system time, so the clock is not frozen here.
    with app.test_request_context():
        yield


def test_a_captcha_handed_out_before_rotation_is_accepted_after_it(live_clock):
    old = current_app.config["SECRET_KEY"]
    challenge = captcha.new_challenge()
    parsed = altcha.Challenge.from_dict(challenge)
    payload = altcha.Payload(parsed, altcha.solve_challenge(parsed, timeout=60)).to_base64()
    rotate(keep_previous=False)
    assert captcha.verify(payload) is False
    current_app.config["PREVIOUS_SECRET_KEYS"] = [old]
    assert captcha.verify(payload) is True


def test_an_email_code_mailed_before_rotation_is_accepted_after_it(ctx):
    stored = crypto.keyed_hash("123456", "email-code")
    rotate()
    assert crypto.keyed_hash_matches(stored, "123456", "email-code")
    assert not crypto.keyed_hash_matches(stored, "654321", "email-code")
    current_app.config["PREVIOUS_SECRET_KEYS"] = []
    assert not crypto.keyed_hash_matches(stored, "123456", "email-code")
