"""The names of common passkey providers by AAGUID, so the security centre can say where a
passkey lives ("iCloud Keychain") beside the name the person gave it.

Names from the community list of passkey provider AAGUIDs,
https://github.com/passkeydeveloper/passkey-authenticator-aaguids (aaguid.json), and for the
YubiKey 5 series from Yubico's published AAGUIDs. That list is meant for exactly this (naming
passkeys in account settings) and not for security decisions; nothing here decides anything.
An AAGUID of zeros (browsers send it with `attestation: "none"` for some providers) and any
AAGUID not listed have no name.
"""

from __future__ import annotations

NAMES = {
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
    "b5397666-4885-aa6b-cebf-e52262a439a2": "Chromium Browser",
    "771b48fd-d3d4-4f74-9232-fc157ab0507a": "Edge on Mac",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "dd4ec289-e01d-41c9-bb89-70fa845d4bf2": "iCloud Keychain (Managed)",
    "53414d53-554e-4700-0000-000000000000": "Samsung Pass",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
    "531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
    "b84e4048-15dc-4dd0-8640-f4f60813c8af": "NordPass",
    "0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6": "Keeper",
    "f3809540-7f14-49c1-a8b3-8f813b225541": "Enpass",
    "39a5647e-1853-446c-a1f6-a79bae9f5bc7": "IDmelon",
    "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
    "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
}


def name_of(aaguid: str | None) -> str | None:
    """The provider's name, where the AAGUID is a known one."""
    return NAMES.get((aaguid or "").lower())
