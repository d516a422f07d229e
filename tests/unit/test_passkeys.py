"""The WebAuthn ceremonies of services/passkeys.py: py_webauthn's own test vectors (made by
real authenticators for http://localhost:5000) through our registration and authentication,
and the checks around them (user verification, the counter, the backup flag, the user handle)
with the software authenticator; the `acr` a sign-in earns."""

from __future__ import annotations

import json

import pytest

from idp import clock
from idp.extensions import db
from idp.models import Passkey
from idp.models.oauth import ACR_MFA, acr_achieved, acr_for, requested_acr
from idp.services import accounts, passkeys, totp
from tests.authenticator import SoftwareAuthenticator

LOCALHOST = {"ISSUER": "http://localhost:5000"}

# py_webauthn tests/test_verify_registration_response.py: a "none" attestation with user verification.
REGISTRATION = {
    "id": "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w",
    "rawId": "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w",
    "response": {
        "attestationObject": "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjESZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2NFAAAAFwAAAAAAAAAAAAAAAAAAAAAAQPctcQPE5oNRRJk_nO_371mf7qE7qIodzr0eOf6ACvnMB1oQG165dqutoi1U44shGezu5_gkTjmOPeJO0N8a7P-lAQIDJiABIVggSFbUJF-42Ug3pdM8rDRFu_N5oiVEysPDB6n66r_7dZAiWCDUVnB39FlGypL-qAoIO9xWHtJygo2jfDmHl-_eKFRLDA",
        "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiVHdON240V1R5R0tMYzRaWS1xR3NGcUtuSE00bmdscXN5VjBJQ0psTjJUTzlYaVJ5RnRya2FEd1V2c3FsLWdrTEpYUDZmbkYxTWxyWjUzTW00UjdDdnciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",
        "transports": ["nfc", "usb"],
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
REGISTRATION_CHALLENGE = "TwN7n4WTyGKLc4ZY-qGsFqKnHM4nglqsyV0ICJlN2TO9XiRyFtrkaDwUvsql-gkLJXP6fnF1MlrZ53Mm4R7Cvw"

# py_webauthn tests/test_verify_authentication_response.py: an RSA key, user verified, counter 0 -> 1
# (its userHandle left out: it is not signed, and it names that test's user, not ours).
RSA_ASSERTION = {
    "id": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
    "rawId": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
    "response": {
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
        "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiaVBtQWkxUHAxWEw2b0FncTNQV1p0WlBuWmExekZVRG9HYmFRMF9LdlZHMWxGMnMzUnRfM280dVN6Y2N5MHRtY1RJcFRUVDRCVTFULUk0bWFhdm5kalEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",
        "signature": "iOHKX3erU5_OYP_r_9HLZ-CexCE4bQRrxM8WmuoKTDdhAnZSeTP0sjECjvjfeS8MJzN1ArmvV0H0C3yy_FdRFfcpUPZzdZ7bBcmPh1XPdxRwY747OrIzcTLTFQUPdn1U-izCZtP_78VGw9pCpdMsv4CUzZdJbEcRtQuRS03qUjqDaovoJhOqEBmxJn9Wu8tBi_Qx7A33RbYjlfyLm_EDqimzDZhyietyop6XUcpKarKqVH0M6mMrM5zTjp8xf3W7odFCadXEJg-ERZqFM0-9Uup6kJNLbr6C5J4NDYmSm3HCSA6lp2iEiMPKU8Ii7QZ61kybXLxsX4w4Dm3fOLjmDw",
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
RSA_CHALLENGE = "iPmAi1Pp1XL6oAgq3PWZtZPnZa1zFUDoGbaQ0_KvVG1lF2s3Rt_3o4uSzccy0tmcTIpTTT4BU1T-I4maavndjQ"
RSA_KEY = ("pAEDAzkBACBZAQDfV20epzvQP-HtcdDpX-cGzdOxy73WQEvsU7Dnr9UWJophEfpngouvgnRLXaEUn_d8HGkp_HIx8rrpkx4BVs6X_B6ZjhLlezjIdJb"
           "LbVeb92BaEsmNn1HW2N9Xj2QM8cH-yx28_vCjf82ahQ9gyAr552Bn96G22n8jqFRQKdVpO-f-bvpvaP3IQ9F5LCX7CUaxptgbog1SFO6FI6ob5SlVVB"
           "00lVXsaYg8cIDZxCkkENkGiFPgwEaZ7995SCbiyCpUJbMqToLMgojPkAhWeyktu7TlK6UBWdJMHc3FPAIs0lH_2_2hKS-mGI1uZAFVAfW1X-mzKL0"
           "czUm2P1UlUox7IUMBAAE")

# The same file: an EC2 key, counter 77 -> 78, the user present but not verified.
EC2_ASSERTION = {
    "id": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
    "rawId": "EDx9FfAbp4obx6oll2oC4-CZuDidRVV4gZhxC529ytlnqHyqCStDUwfNdm1SNHAe3X5KvueWQdAX3x9R1a2b9Q",
    "response": {
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MBAAAATg",
        "clientDataJSON": "eyJjaGFsbGVuZ2UiOiJ4aTMwR1BHQUZZUnhWRHBZMXNNMTBEYUx6VlFHNjZudi1fN1JVYXpIMHZJMll2RzhMWWdERW52TjVmWlpOVnV2RUR1TWk5dGUzVkxxYjQyTjBma0xHQSIsImNsaWVudEV4dGVuc2lvbnMiOnt9LCJoYXNoQWxnb3JpdGhtIjoiU0hBLTI1NiIsIm9yaWdpbiI6Imh0dHA6Ly9sb2NhbGhvc3Q6NTAwMCIsInR5cGUiOiJ3ZWJhdXRobi5nZXQifQ",
        "signature": "MEUCIGisVZOBapCWbnJJvjelIzwpixxIwkjCCb5aCHafQu68AiEA88v-2pJNNApPFwAKFiNuf82-2hBxYW5kGwVweeoxCwo",
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
EC2_CHALLENGE = "xi30GPGAFYRxVDpY1sM10DaLzVQG66nv-_7RUazH0vI2YvG8LYgDEnvN5fZZNVuvEDuMi9te3VLqb42N0fkLGA"
EC2_KEY = "pQECAyYgASFYIIeDTe-gN8A-zQclHoRnGFWN8ehM1b7yAsa8I8KIvmplIlgg4nFGT5px8o6gpPZZhO01wdy9crDSA_Ngtkx0vGpvPHI"


def stored(account, credential_id: str, key: str, sign_count: int, backup_eligible: bool = False) -> Passkey:
    from webauthn.helpers import base64url_to_bytes

    passkey = Passkey(account_id=account.id, credential_id=credential_id, public_key=base64url_to_bytes(key),
                      sign_count=sign_count, aaguid="00000000-0000-0000-0000-000000000000", name="Key",
                      backup_eligible=backup_eligible, backed_up=False, transports=[])
    db.session.add(passkey)
    db.session.flush()
    return passkey


@pytest.mark.config(**LOCALHOST)
def test_the_relying_party_is_the_issuers_host(account):
    rp = passkeys.relying_party()
    assert (rp.id, rp.origin) == ("localhost", "http://localhost:5000")


@pytest.mark.config(**LOCALHOST)
def test_a_registration_vector_verifies(account):
    new = passkeys.verify_registration(account, json.dumps(REGISTRATION), REGISTRATION_CHALLENGE, ip=None)
    assert new.credential_id == REGISTRATION["id"] and new.sign_count == 23
    assert new.aaguid == "00000000-0000-0000-0000-000000000000" and not new.backup_eligible
    assert new.transports == ["nfc", "usb"]
    passkey = passkeys.store(account, new, name="", ip=None, locale="en")
    assert passkey.name == "Passkey" and passkeys.amr_of(passkey) == "hwk"


@pytest.mark.config(**LOCALHOST)
@pytest.mark.parametrize("challenge", ["", "AAAA", RSA_CHALLENGE])
def test_a_registration_vector_with_another_challenge_is_refused(account, challenge):
    from idp.errors import PasskeyNotAdded

    with pytest.raises(PasskeyNotAdded):
        passkeys.verify_registration(account, json.dumps(REGISTRATION), challenge, ip=None)


def test_a_registration_vector_for_another_origin_is_refused(account):
    """The vector was made for http://localhost:5000; this provider is http://idp.test."""
    from idp.errors import PasskeyNotAdded

    with pytest.raises(PasskeyNotAdded):
        passkeys.verify_registration(account, json.dumps(REGISTRATION), REGISTRATION_CHALLENGE, ip=None)


@pytest.mark.config(**LOCALHOST)
def test_an_authentication_vector_verifies_and_moves_the_counter(account):
    passkey = stored(account, RSA_ASSERTION["id"], RSA_KEY, sign_count=0)
    assert passkeys.verify_assertion(json.dumps(RSA_ASSERTION), RSA_CHALLENGE) is passkey
    assert passkey.sign_count == 1 and passkey.last_used_at == clock.now()


@pytest.mark.config(**LOCALHOST)
def test_an_authentication_vector_replayed_against_its_counter_is_a_clone(account):
    stored(account, RSA_ASSERTION["id"], RSA_KEY, sign_count=1)
    with pytest.raises(passkeys.Rejected) as refused:
        passkeys.verify_assertion(json.dumps(RSA_ASSERTION), RSA_CHALLENGE)
    assert refused.value.clone and refused.value.passkey is not None


@pytest.mark.config(**LOCALHOST)
def test_an_authentication_vector_without_user_verification_is_refused(account):
    stored(account, EC2_ASSERTION["id"], EC2_KEY, sign_count=77)
    with pytest.raises(passkeys.Rejected) as refused:
        passkeys.verify_assertion(json.dumps(EC2_ASSERTION), EC2_CHALLENGE)
    assert "User verification is required" in refused.value.why and not refused.value.clone


@pytest.mark.config(**LOCALHOST)
def test_an_authentication_vector_refusals(account, app):
    passkey = stored(account, RSA_ASSERTION["id"], RSA_KEY, sign_count=0)
    other = accounts.create_account("bram@example.com", "secret password")
    cases = {
        "unknown credential": (dict(RSA_ASSERTION, id="AAAA", rawId="AAAA"), RSA_CHALLENGE, None),
        "another account's": (RSA_ASSERTION, RSA_CHALLENGE, other),
        "another challenge": (RSA_ASSERTION, EC2_CHALLENGE, None),
        "no challenge": (RSA_ASSERTION, None, None),
        "not an assertion": ({"id": 1}, RSA_CHALLENGE, None),
    }
    for why, (credential, challenge, owner) in cases.items():
        with pytest.raises(passkeys.Rejected):
            passkeys.verify_assertion(json.dumps(credential), challenge, account=owner)
    app.config["ISSUER"] = "http://localhost:5001"  # another origin
    with pytest.raises(passkeys.Rejected):
        passkeys.verify_assertion(json.dumps(RSA_ASSERTION), RSA_CHALLENGE)
    assert passkey.sign_count == 0


def registered(account, authenticator: SoftwareAuthenticator) -> Passkey:
    options, challenge = passkeys.registration_options(account)
    assert options["authenticatorSelection"] == {"residentKey": "required", "requireResidentKey": True,
                                                 "userVerification": "required"}
    assert options["attestation"] == "none" and options["rp"] == {"id": "idp.test", "name": "Suite ID"}
    assert options["user"]["name"] == account.email
    new = passkeys.verify_registration(account, authenticator.create(options, "http://idp.test"), challenge, ip=None)
    return passkeys.store(account, new, name="Laptop", ip=None, locale="en")


def signed(authenticator: SoftwareAuthenticator, **options) -> tuple[str, str]:
    request, challenge = passkeys.authentication_options()
    assert request["userVerification"] == "required" and request["allowCredentials"] == []
    return authenticator.get(request, "http://idp.test", **options), challenge


def test_the_counter_must_grow_while_it_counts(account):
    authenticator = SoftwareAuthenticator()
    passkey = registered(account, authenticator)
    assert passkeys.verify_assertion(*signed(authenticator)).sign_count == 1
    with pytest.raises(passkeys.Rejected) as refused:
        passkeys.verify_assertion(*signed(authenticator, sign_count=1))
    assert refused.value.clone
    with pytest.raises(passkeys.Rejected):
        passkeys.verify_assertion(*signed(authenticator, sign_count=0))
    assert passkeys.verify_assertion(*signed(authenticator)).sign_count == 4 == passkey.sign_count


def test_a_synced_passkey_without_a_counter_is_a_software_key(account):
    authenticator = SoftwareAuthenticator(synced=True, counter=False)
    passkey = registered(account, authenticator)
    assert passkey.backup_eligible and passkeys.amr_of(passkey) == "swk"
    for _ in range(2):
        assert passkeys.verify_assertion(*signed(authenticator)).sign_count == 0


def test_the_backup_eligibility_of_a_passkey_never_changes(account):
    authenticator = SoftwareAuthenticator()
    registered(account, authenticator)
    authenticator.synced = True
    with pytest.raises(passkeys.Rejected) as refused:
        passkeys.verify_assertion(*signed(authenticator))
    assert refused.value.why == "backup eligibility changed"


def test_the_user_handle_must_be_the_passkeys_account(account):
    authenticator = SoftwareAuthenticator()
    registered(account, authenticator)
    authenticator.credentials[0].user_handle = b"someone else"
    with pytest.raises(passkeys.Rejected) as refused:
        passkeys.verify_assertion(*signed(authenticator))
    assert refused.value.why == "user handle of another account"


def test_a_name_is_checked(account):
    from idp.errors import InvalidPasskeyName

    assert passkeys.check_name("  Work \t laptop ") == "Work laptop"
    for bad in ("x" * 61, "bell\x07"):
        with pytest.raises(InvalidPasskeyName):
            passkeys.check_name(bad)


@pytest.mark.parametrize("amr, wanted, acr", [
    (["pwd", "otp", "mfa"], [], ACR_MFA),
    (["pwd", "otp", "mfa"], ["phr"], ACR_MFA),
    (["hwk", "mfa"], [], "phr"),
    (["swk", "mfa"], [ACR_MFA, "phr"], ACR_MFA),
    (["pwd", "hwk", "mfa"], ["urn:other", "phr"], "phr"),
    (["pwd"], [ACR_MFA], None),
])
def test_the_acr_a_sign_in_earns(amr, wanted, acr):
    assert acr_for(amr, wanted) == acr
    assert (acr in acr_achieved(amr)) if acr else acr_achieved(amr) == []


@pytest.mark.parametrize("params, asked", [
    ({}, ([], False)),
    ({"acr_values": "phr urn:x"}, (["phr", "urn:x"], False)),
    ({"claims": '{"id_token": {"acr": {"essential": true, "value": "phr"}}}', "acr_values": "x"}, (["phr"], True)),
    ({"claims": '{"id_token": {"acr": {"values": ["a", "b"]}}}'}, (["a", "b"], False)),
    ({"claims": '{"id_token": {"acr": null}}', "acr_values": "x"}, (["x"], False)),
    ({"claims": "not json"}, ([], False)),
])
def test_what_acr_a_request_asks_for(params, asked):
    assert requested_acr(params) == asked


def test_the_authenticator_pages_facts_are_what_the_account_object_says(account):
    facts = accounts.second_step_facts(account.id)
    assert facts == {"account_email": account.email, "totp_enrolled": account.totp_enrolled, "has_passkeys": False}
    assert facts["totp_enrolled"] is False
    account.totp_secret = totp.seal(totp.new_secret())
    account.totp_enrolled_at = clock.now()
    stored(account, "cred-a", EC2_KEY, 0)
    assert accounts.second_step_facts(account.id) == {"account_email": account.email, "totp_enrolled": True,
                                                      "has_passkeys": True}
    account.totp_enrolled_at = None  # a secret without enrolment is no authenticator app
    assert accounts.second_step_facts(account.id)["totp_enrolled"] is False
    assert accounts.second_step_facts("no-such-account") is None
