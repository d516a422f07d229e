"""The password policy for new passwords: the same rules live in the browser and on the server."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from zxcvbn import zxcvbn

from ..errors import PasswordRejected
from . import passwords

MIN_LENGTH = 12
MAX_LENGTH = 1024
# zxcvbn's estimate: 3 = "safely unguessable: moderate protection from offline slow-hash scenario".
MIN_SCORE = 3

RULES = {
    "length": _l("At least 12 characters"),
    "not_common": _l("Not a common or previously leaked password"),
    "not_personal": _l("Does not contain your e-mail address or name"),
    "strong": _l("Hard to guess: add words, or mix letters, digits and symbols"),
    "confirmed": _l("The confirmation is the same password"),
}


# What is wrong when a rule is not met, as a refusal names it.
PROBLEMS = {
    "length": _l("The password is shorter than 12 characters."),
    "too_long": _l("The password is longer than 1,024 characters."),
    "not_common": _l("This is a common or previously leaked password."),
    "not_personal": _l("The password contains your e-mail address or name."),
    "strong": _l("The password is easy to guess: add words, or mix letters, digits and symbols."),
    "confirmed": _l("The passwords are not the same."),
    # Checked when the password is set, never live: the live check must not become a way
    # to test guesses of the current password.
    "not_current": _l("This is your current password: choose a new one."),
}


@dataclass
class Verdict:
    rules: dict[str, bool]
    too_long: bool = False

    @property
    def ok(self) -> bool:
        return all(self.rules.values())

    def problems(self) -> list:
        return [PROBLEMS["too_long" if name == "length" and self.too_long else name]
                for name, passed in self.rules.items() if not passed]

    def refusal(self) -> PasswordRejected:
        return PasswordRejected(dict(self.rules), self.problems())


def _personal_parts(email: str, name: str) -> list[str]:
    local = (email or "").split("@")[0].lower()
    parts = {local} | set(re.split(r"[._+\-]", local)) | {p.lower() for p in re.split(r"\s+", name or "")}
    return [p for p in parts if len(p) >= 3]


def check(password: str, confirmation: str | None, *, email: str, name: str = "") -> Verdict:
    password = password or ""
    lowered = password.lower()
    personal = _personal_parts(email, name)
    rules = {
        "length": MIN_LENGTH <= len(password) <= MAX_LENGTH,
        "not_common": True,
        "not_personal": not any(part in lowered for part in personal),
        "strong": False,
        "confirmed": confirmation is None or (password == confirmation and password != ""),
    }
    if password:
        # zxcvbn is quadratic in the length; what it sees of a long password is plenty.
        result = zxcvbn(password[:64], user_inputs=personal)
        rules["strong"] = result["score"] >= MIN_SCORE
        # A password that is mostly one entry of the common-passwords list is refused
        # whatever its score ("password1234", "qwertyuiop123").
        for match in result["sequence"]:
            if match.get("dictionary_name") == "passwords" and len(match.get("token", "")) >= 0.6 * len(password):
                rules["not_common"] = False
    else:
        rules["not_common"] = False
    return Verdict(rules, too_long=len(password) > MAX_LENGTH)


def hash_if_allowed(password: str, confirmation: str | None, *, email: str, name: str = "") -> str:
    """The Argon2 hash of a new password that the policy allows; PasswordRejected otherwise."""
    verdict = check(password, confirmation, email=email, name=name)
    if not verdict.ok:
        raise verdict.refusal()
    return passwords.hash_password(password)
