"""Passkeys (WebAuthn, with py_webauthn): the options a browser needs, the registration and
authentication ceremonies, and the passkeys a person has.

The relying party is the issuer's host (its id: the host name without the port; its origin:
scheme, host and port), so a passkey works on this provider's pages only. Every passkey is a
discoverable credential made with user verification (a fingerprint, face or the device's
PIN), and every use asks for user verification again: then a passkey is a sign-in of its own.

What a use is worth (``amr_of``): a backup-eligible credential (the BE flag: the key may be
synced to other devices by its provider) is a software-held key, `swk`; one that is not is
device-bound, `hwk`. Without attestation (none is asked: it would keep out most password
managers) nothing proves that a device-bound key is in hardware; BE is the one fact the
authenticator states, and it never changes for a credential (a change is refused).

Challenges are made here and kept by the caller's stored flow, which hands each one back
once; this module never remembers one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import bindparam, delete, func, select
from webauthn import (generate_authentication_options, generate_registration_options, verify_authentication_response,
                      verify_registration_response)
from webauthn.helpers import (base64url_to_bytes, bytes_to_base64url, options_to_json_dict,
                              parse_authentication_credential_json, parse_registration_credential_json)
from webauthn.helpers.structs import (AttestationConveyancePreference, AuthenticatorSelectionCriteria,
                                      CredentialDeviceType, PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)

from .. import clock
from ..errors import (InvalidPasskeyName, LastSecondFactor, PasskeyExists, PasskeyNotAdded, PasskeyNotFound,
                      TooManyPasskeys)
from ..extensions import db
from ..models import Account, Passkey
from ..models.passkeys import CREDENTIAL_ID_MAX
from ..unit_of_work import kept
from . import audit, authenticators, mailer

NAME_MAX_LENGTH = 60
# The longest credential JSON taken from a form (the request body is limited as well).
CREDENTIAL_JSON_MAX = 16 * 1024


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str


def relying_party() -> RelyingParty:
    issuer = urlsplit(current_app.config["ISSUER"])
    return RelyingParty(id=issuer.hostname or "", origin=f"{issuer.scheme}://{issuer.netloc}",
                        name=current_app.config["PRODUCT_NAME"])


def _timeout_ms() -> int:
    return current_app.config["PASSKEY_CEREMONY_TIMEOUT"] * 1000


def user_handle(account: Account) -> bytes:
    """The WebAuthn user id: the account's opaque id (its `sub`), never the address."""
    return account.id.encode()


# -- what a person has --------------------------------------------------------------------


def for_account(account: Account) -> list[Passkey]:
    return list(db.session.scalars(
        select(Passkey).where(Passkey.account_id == account.id).order_by(Passkey.created_at, Passkey.id)))


_COUNT = select(func.count(Passkey.id)).where(Passkey.account_id == bindparam("account_id"))  # built once


def count(account: Account) -> int:
    return db.session.scalar(_COUNT, {"account_id": account.id}) or 0


def amr_of(passkey: Passkey) -> str:
    return "swk" if passkey.backup_eligible else "hwk"


def provider_name(passkey: Passkey) -> str | None:
    return authenticators.name_of(passkey.aaguid)


# -- registration -----------------------------------------------------------------------


def registration_options(account: Account, *, exclude_existing: bool = True) -> tuple[dict, str]:
    """(the options for ``navigator.credentials.create``, the challenge to keep). With
    ``exclude_existing`` the browser will not register an authenticator twice."""
    rp = relying_party()
    existing = for_account(account) if exclude_existing else []
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user_handle(account),
        user_name=account.email,
        user_display_name=account.name or account.email,
        timeout=_timeout_ms(),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id)) for p in existing],
    )
    return options_to_json_dict(options), bytes_to_base64url(options.challenge)


def check_name(name: str | None) -> str:
    """The name a person gives a passkey: white space runs become one space; empty is allowed
    (the provider's name or "Passkey" is used then)."""
    name = " ".join((name or "").split())
    if len(name) > NAME_MAX_LENGTH or any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidPasskeyName()
    return name


def check_room(account: Account) -> None:
    limit = current_app.config["PASSKEYS_PER_ACCOUNT"]
    if count(account) >= limit:
        raise TooManyPasskeys(limit)


@dataclass(frozen=True)
class NewPasskey:
    """A verified registration, not stored yet."""

    credential_id: str
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    transports: list[str]


def verify_registration(account: Account, credential: str, challenge: str | None, *, ip: str | None) -> NewPasskey:
    """The browser's answer to ``registration_options``, checked against the challenge:
    this site's origin and relying-party id, user verification, a supported key. A refusal
    is audited (kept) and raises PasskeyNotAdded; nothing is stored yet."""
    try:
        if not challenge or not credential or len(credential) > CREDENTIAL_JSON_MAX:
            raise ValueError("no challenge or no credential")
        rp = relying_party()
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp.id,
            expected_origin=rp.origin, require_user_verification=True)
        credential_id = bytes_to_base64url(verified.credential_id)
        if len(credential_id) > CREDENTIAL_ID_MAX:
            raise ValueError("credential id too long")
    # The library's parsers raise more than their own exception types on malformed input
    # (binascii, CBOR, key decoding): every one of them is a refused registration.
    except Exception as exc:  # noqa: BLE001
        with kept():
            audit.record("passkey.add", actor=account.id, account=account, outcome="failure", ip=ip,
                         why=str(exc)[:200])
        raise PasskeyNotAdded() from None
    if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)) is not None:
        with kept():
            audit.record("passkey.add", actor=account.id, account=account, outcome="failure", ip=ip,
                         why="registered already")
        raise PasskeyExists()
    return NewPasskey(
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        transports=[t.value for t in (parsed.response.transports or [])],
    )


def store(account: Account, new: NewPasskey, *, name: str, ip: str | None, locale: str | None) -> Passkey:
    """Keep a verified passkey; audited, and a mail tells the person."""
    passkey = Passkey(
        account_id=account.id, credential_id=new.credential_id, public_key=new.public_key,
        sign_count=new.sign_count, aaguid=new.aaguid, backup_eligible=new.backup_eligible,
        backed_up=new.backed_up, transports=new.transports,
        name=name or authenticators.name_of(new.aaguid) or "Passkey",
    )
    db.session.add(passkey)
    db.session.flush()
    audit.record("passkey.added", actor=account.id, account=account, ip=ip, passkey=passkey.id,
                 synced=passkey.backup_eligible, aaguid=passkey.aaguid)
    mailer.queue(account.email, "passkey_added", locale, name=account.name, email=account.email,
                 passkey=passkey.name, when=clock.now())
    return passkey


# -- authentication ---------------------------------------------------------------------


def authentication_options(account: Account | None = None) -> tuple[dict, str]:
    """(the options for ``navigator.credentials.get``, the challenge to keep): for a sign-in
    without an address, any discoverable passkey of this site; for the second step of
    ``account``, its passkeys."""
    allowed = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
               for p in for_account(account)] if account is not None else []
    options = generate_authentication_options(
        rp_id=relying_party().id, timeout=_timeout_ms(), allow_credentials=allowed,
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json_dict(options), bytes_to_base64url(options.challenge)


class Rejected(Exception):
    """An assertion that does not verify; ``passkey`` where the credential is a known one
    (the audit trail names its account), ``clone`` when its counter went back."""

    def __init__(self, why: str, passkey: Passkey | None = None, clone: bool = False):
        super().__init__(why)
        self.why = why
        self.passkey = passkey
        self.clone = clone


def verify_assertion(credential: str, challenge: str | None, *, account: Account | None = None) -> Passkey:
    """The passkey that signed ``challenge``, its counter and backup state updated; or
    Rejected. With ``account``, only that account's passkeys count."""
    if not challenge:
        raise Rejected("no challenge (used already, or never asked for)")
    if not credential or len(credential) > CREDENTIAL_JSON_MAX:
        raise Rejected("no credential")
    try:
        parsed = parse_authentication_credential_json(credential)
    except Exception:  # noqa: BLE001 - see verify_registration
        raise Rejected("malformed credential") from None
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == parsed.id[:CREDENTIAL_ID_MAX]))
    if passkey is None or (account is not None and passkey.account_id != account.id):
        raise Rejected("unknown credential")
    if parsed.response.user_handle is not None and parsed.response.user_handle != user_handle(passkey.account):
        raise Rejected("user handle of another account", passkey)
    rp = relying_party()
    try:
        # The counter is checked below, where a clone can be told from other failures.
        verified = verify_authentication_response(
            credential=parsed, expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp.id,
            expected_origin=rp.origin, credential_public_key=passkey.public_key, credential_current_sign_count=0,
            require_user_verification=True)
    except Exception as exc:  # noqa: BLE001 - see verify_registration
        raise Rejected(str(exc)[:200], passkey) from None
    if (verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE) != passkey.backup_eligible:
        raise Rejected("backup eligibility changed", passkey)
    if (verified.new_sign_count or passkey.sign_count) and verified.new_sign_count <= passkey.sign_count:
        # WebAuthn 6.1.1: a counter that does not grow means two copies of the key exist.
        raise Rejected(f"signature counter {verified.new_sign_count} after {passkey.sign_count}", passkey, clone=True)
    passkey.sign_count = verified.new_sign_count
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = clock.now()
    return passkey


def record_rejection(rejected: Rejected, *, ip: str | None, purpose: str) -> None:
    """The audit entries of a refused assertion (the caller writes them inside ``kept()``):
    the refusal, and a possibly cloned key as an event of its own."""
    passkey = rejected.passkey
    account = passkey.account if passkey is not None else None
    if rejected.clone:
        audit.record("passkey.clone_warning", actor=account.id, account=account, outcome="failure", ip=ip,
                     passkey=passkey.id, why=rejected.why)
    audit.record("login.passkey", account=account, outcome="failure", ip=ip, why=rejected.why, purpose=purpose,
                 passkey=passkey.id if passkey is not None else None)


# -- removal ----------------------------------------------------------------------------


def own(account: Account, passkey_id: str) -> Passkey:
    """One of the account's passkeys by its handle; another person's or an unknown one is not found."""
    passkey = db.session.get(Passkey, passkey_id) if isinstance(passkey_id, str) and len(passkey_id) <= 32 else None
    if passkey is None or passkey.account_id != account.id:
        raise PasskeyNotFound()
    return passkey


def remove(account: Account, passkey_id: str, *, ip: str | None, locale: str | None) -> Passkey:
    """The person removes one of their passkeys; never the last second factor of the account."""
    passkey = own(account, passkey_id)
    if not account.totp_enrolled and count(account) <= 1:
        with kept():
            audit.record("passkey.remove", actor=account.id, account=account, outcome="failure", ip=ip,
                         passkey=passkey.id, why="last second factor")
        raise LastSecondFactor()
    db.session.delete(passkey)
    audit.record("passkey.removed", actor=account.id, account=account, ip=ip, passkey=passkey.id)
    mailer.queue(account.email, "passkey_removed", locale, name=account.name, email=account.email,
                 passkey=passkey.name, when=clock.now())
    return passkey


def remove_all(account: Account) -> int:
    """Every passkey of the account (a reset of two-step verification); how many there were.
    The caller audits and mails the reset."""
    result = db.session.execute(delete(Passkey).where(Passkey.account_id == account.id))
    return result.rowcount or 0
