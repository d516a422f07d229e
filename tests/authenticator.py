"""A tiny software passkey authenticator for the tests: it answers the options the provider
hands the browser with real WebAuthn objects (a "none" attestation, ES256 assertions), as
``navigator.credentials`` and an authenticator would, so tests drive whole ceremonies
without a browser. Every knob a refusal needs is an argument: the origin and relying-party
id the browser would report, user verification, the backup flags, the signature counter."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftwareAuthenticator:
    """``synced``: a backup-eligible (and backed-up) passkey, as password managers make;
    ``counter``: whether the authenticator counts its signatures (synced ones often do not)."""

    synced: bool = False
    counter: bool = True
    aaguid: bytes = bytes(16)
    credentials: list[Credential] = field(default_factory=list)

    def _flags(self, *, verified: bool, attested: bool = False) -> int:
        flags = UP | (UV if verified else 0) | (BE | BS if self.synced else 0)
        return flags | (AT if attested else 0)

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}).encode()

    # navigator.credentials.create
    def create(self, options: dict, origin: str, *, rp_id: str | None = None, verified: bool = True) -> str:
        rp_id = rp_id or options["rp"]["id"]
        credential = Credential(id=secrets.token_bytes(32), key=ec.generate_private_key(ec.SECP256R1()),
                                rp_id=rp_id, user_handle=unb64url(options["user"]["id"]))
        numbers = credential.key.public_key().public_numbers()
        cose_key = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                                -3: numbers.y.to_bytes(32, "big")})
        auth_data = (hashlib.sha256(rp_id.encode()).digest()
                     + bytes([self._flags(verified=verified, attested=True)]) + struct.pack(">I", 0)
                     + self.aaguid + struct.pack(">H", len(credential.id)) + credential.id + cose_key)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(credential)
        return json.dumps({
            "id": b64url(credential.id), "rawId": b64url(credential.id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(self._client_data("webauthn.create", options["challenge"], origin)),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
        })

    # navigator.credentials.get
    def get(self, options: dict, origin: str, *, rp_id: str | None = None, verified: bool = True,
            credential: Credential | None = None, sign_count: int | None = None) -> str:
        """An assertion with ``credential`` (else one that ``allowCredentials`` names, else
        the newest: a discoverable sign-in); ``sign_count`` overrides the counter it reports."""
        if credential is None:
            allowed = {unb64url(d["id"]) for d in options.get("allowCredentials") or []}
            usable = [c for c in self.credentials if not allowed or c.id in allowed]
            assert usable, "the authenticator has no passkey the options allow"
            credential = usable[-1]
        if self.counter:
            credential.sign_count += 1
        count = credential.sign_count if sign_count is None else sign_count
        auth_data = (hashlib.sha256((rp_id or options.get("rpId") or credential.rp_id).encode()).digest()
                     + bytes([self._flags(verified=verified)]) + struct.pack(">I", count))
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64url(credential.id), "rawId": b64url(credential.id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data), "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature), "userHandle": b64url(credential.user_handle)},
        })
