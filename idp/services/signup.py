"""F8 trial sign-up (seed 004 "Registreren"): the company details and bank account it checks,
and the account and trial administration it creates, all at once, at its end."""

from __future__ import annotations

import datetime as dt
import re
import warnings

from flask import current_app
from flask_babel import lazy_gettext as _l
from schwifty import IBAN
from schwifty import exceptions as iban_errors

from .. import clock
from ..errors import InvalidEmail, InvalidInput
from ..extensions import db
from ..models import Account, Administration
from . import accounts, administrations, audit

TRIAL_PLAN = "trial"
# The Chamber of Commerce (KvK) number: eight digits; people type it with spaces or dots too.
KVK_NUMBER = re.compile(r"[0-9]{8}")
_KVK_SEPARATORS = re.compile(r"[\s.]+")
MAX_ADDRESS = 300


class AddressTaken(InvalidInput):
    """The address got an account while the sign-up was under way."""

    status = 409
    public = _l("This e-mail address has an account already. Sign in with it instead.")


def company_details(form) -> dict:
    """The company's name, KvK number and (optional, as CONTRACT section 7 lists the fields)
    address, each checked; one message per fault."""
    name = " ".join((form.get("company_name") or "").split())
    kvk = _KVK_SEPARATORS.sub("", form.get("kvk_number") or "")
    address = " ".join((form.get("address") or "").split())
    faults = []
    if not name or len(name) > 200:
        faults.append(_l("Enter the name of your company (at most 200 characters)."))
    if not KVK_NUMBER.fullmatch(kvk):
        faults.append(_l("A Chamber of Commerce (KvK) number has 8 digits, for example 12345678."))
    if len(address) > MAX_ADDRESS:
        faults.append(_l("The address is too long: street and number, postcode and place (at most 300 characters)."))
    if faults:
        raise InvalidInput(" ".join(str(f) for f in faults))
    return {"company_name": name, "kvk_number": kvk, "address": address}


def first_page(form) -> dict:
    """What the first page asks, each field checked, every fault named at once: the company
    (``company``), its bank account (``iban``, compact) and the person (``email``, ``name``)."""
    checks = {
        "company": lambda: company_details(form),
        "iban": lambda: bank_account(form.get("iban", "")),
        "email": lambda: accounts.normalize_email(form.get("email", "")),
    }
    found, faults = {}, []
    for key, check in checks.items():
        try:
            found[key] = check()
        except (InvalidInput, InvalidEmail) as err:
            faults.append(err.message())
    if faults:
        raise InvalidInput(" ".join(faults))
    found["name"] = " ".join((form.get("name") or "").split())[:200]
    return found


def entered(data: dict) -> dict:
    """The first page's fields as the flow holds them, to fill that page in again (another
    address after the code was mailed)."""
    return {**(data.get("company") or {}), "iban": shown_iban(data.get("iban")), "email": data.get("email", ""),
            "name": data.get("name", "")}


def bank_account(value) -> str:
    """The IBAN in its compact form, checked by schwifty: characters, country, length,
    format, check digits and (where the country has one) the account number's own check.
    Only accounts in the SEPA zone: the suite collects and pays in euros."""
    compact = re.sub(r"[\s\-.]+", "", value or "").upper() if isinstance(value, str) else ""
    if not compact:
        raise InvalidInput(_l("Enter the IBAN of your company's bank account."))
    if len(compact) > 34 or not compact.isalnum() or not compact.isascii():
        raise InvalidInput(_l("An IBAN has only letters and digits, for example NL91 ABNA 0417 1643 00."))
    country = compact[:2]
    try:
        with warnings.catch_warnings():
            # Countries without a registered national check: their check digits are taken as they are.
            warnings.simplefilter("ignore", iban_errors.NationalChecksumNotVerified)
            iban = IBAN(compact, validate_bban=True)
    except iban_errors.InvalidCountryCode:
        raise InvalidInput(_l("An IBAN starts with the code of its country, such as NL; %(country)s is not one.",
                              country=country)) from None
    except iban_errors.InvalidLength:
        raise InvalidInput(_l("An IBAN from %(country)s has %(expected)s characters; this one has %(given)s.",
                              country=country, expected=_expected_length(compact), given=len(compact))) from None
    except iban_errors.InvalidChecksumDigits:
        raise InvalidInput(_l("The check digits of this IBAN do not match: check it for a typing error.")) from None
    except (iban_errors.InvalidBankCode, iban_errors.InvalidBranchCode):
        raise InvalidInput(_l("No bank in %(country)s has the bank code in this IBAN: check it for a typing error.",
                              country=country)) from None
    except (iban_errors.InvalidBBANChecksum, iban_errors.InvalidAccountCode):
        raise InvalidInput(_l("The account number in this IBAN fails its check: check it for a typing error.")) from None
    except iban_errors.SchwiftyException:
        raise InvalidInput(_l("This IBAN does not have the format of a bank account in %(country)s.",
                              country=country)) from None
    if not iban.in_sepa_zone:
        raise InvalidInput(_l("Only bank accounts in the euro payments area (SEPA) can be used; %(country)s is not in it.",
                              country=country))
    return str(iban.compact)


def _expected_length(compact: str) -> int | str:
    try:
        return IBAN(compact, allow_invalid=True).spec.iban_length
    except iban_errors.SchwiftyException:
        return "?"


def shown_iban(compact: str | None) -> str:
    return IBAN(compact, allow_invalid=True).formatted if compact else ""


def trial_ends(now: dt.datetime | None = None) -> dt.datetime:
    return (now or clock.now()) + dt.timedelta(days=current_app.config["TRIAL_DAYS"])


def create_trial(*, email: str, name: str, password_hash: str, company: dict, iban: str,
                 firm: Administration | None, ip: str | None) -> tuple[Account, Administration]:
    """Everything a sign-up makes, in the caller's single transaction: the account (its
    address verified by the code of the sign-up), the trial administration with the person
    as owner, its connector user and, with a firm code, the firm's access."""
    if accounts.find_by_email(email) is not None:
        raise AddressTaken()
    now = clock.now()
    account = Account(email=email, name=name, password_hash=password_hash, password_changed_at=now,
                      email_verified=True)
    db.session.add(account)
    db.session.flush()
    administration = administrations.create_company(company["company_name"], account, plan=TRIAL_PLAN, firm=firm)
    administration.kvk_number = company["kvk_number"]
    administration.address = company["address"]
    administration.iban = iban
    administration.trial_ends_at = trial_ends(now)
    audit.record("account.created", actor=account.id, account=account, ip=ip, via="signup")
    if firm is not None:
        administrations.record_firm_link("firm.linked", firm, administration, actor=account.id, ip=ip, via="signup")
    audit.record("signup.completed", actor=account.id, account=account, ip=ip, administration=administration.id,
                 plan=TRIAL_PLAN, firm=firm.id if firm else None)
    db.session.flush()
    return account, administration
