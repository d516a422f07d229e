"""What a person does in the browser: the authenticator app and the sign-in steps.

Only the stable hooks of the contract are used: the step form ``#step``, its field
names, ``img#totp-qr``, ``#totp-secret``, ``role="alert"`` and the portal's ids.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from weakref import WeakKeyDictionary

import pyotp
from playwright.sync_api import BrowserContext, ConsoleMessage, Error as PlaywrightError, Page, Response, expect

SUBMIT = "#step button[type=submit]"


@dataclass
class Person:
    email: str
    password: str
    name: str
    sub: str
    authenticator: "Authenticator | None" = None


class Authenticator:
    """The person's authenticator app.

    The provider accepts the code of the current 30-second step or of a neighbouring
    step, but never a step at or before the last one it accepted (no replay).
    ``code()`` gives the earliest step that is still acceptable, so consecutive
    sign-ins need no waiting; it waits for the clock only when the next free step
    is not yet within reach (more than two sign-ins within one step)."""

    STEP = 30

    def __init__(self, secret: str):
        self.secret = secret
        self._totp = pyotp.TOTP(secret)
        self.last_step: int | None = None

    def code(self) -> str:
        now_step = int(time.time()) // self.STEP
        step = now_step if self.last_step is None else max(now_step, self.last_step + 1)
        if step > now_step + 1:
            time.sleep(max(0.0, (step - 1) * self.STEP - time.time() + 0.5))
        self.last_step = step
        return self._totp.generate_otp(step)

    def code_at(self, step: int) -> str:
        """The code the app shows during 30-second step ``step`` (nothing is recorded)."""
        return self._totp.generate_otp(step)

    def wrong_code(self) -> str:
        """Six digits that match none of the steps the provider could accept now."""
        now_step = int(time.time()) // self.STEP
        near = {self._totp.generate_otp(s) for s in range(now_step - 2, now_step + 3)}
        candidate = int(self._totp.generate_otp(now_step))
        while f"{candidate:06d}" in near:
            candidate = (candidate + 1) % 1_000_000
        return f"{candidate:06d}"


# -- pages ------------------------------------------------------------------------------


class BlockedByCsp(AssertionError):
    """The browser refused a navigation because of the page's Content-Security-Policy."""


_csp_violations: "WeakKeyDictionary[Page, list[str]]" = WeakKeyDictionary()


def watch_console(context: BrowserContext) -> None:
    """Keep the Content-Security-Policy violations each page reports on its console."""

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text and message.page is not None:
            _csp_violations.setdefault(message.page, []).append(message.text.strip())

    context.on("console", on_console)


def _csp_violation(page: Page) -> str | None:
    if not _csp_violations.get(page):
        try:  # the console message may trail the failed navigation a little
            page.wait_for_event("console", predicate=lambda m: "Content Security Policy" in m.text, timeout=3000)
        except PlaywrightError:
            pass
    violations = _csp_violations.get(page)
    return violations[-1] if violations else None


def field(page: Page, name: str):
    return page.locator(f"#step [name={name}]")


def submit(page: Page, **fields: str) -> Response:
    """Fill the step form's fields, press its submit button and wait for the page that
    answers (after any redirects). Returns that page's response."""
    for name, value in fields.items():
        field(page, name).fill(value)
    url = page.url
    try:
        with page.expect_navigation() as navigation:
            page.locator(SUBMIT).click()
        response = navigation.value
    except PlaywrightError as exc:
        violation = _csp_violation(page)
        if violation:
            raise BlockedByCsp(f"submitting the form on {url} was blocked by the browser: {violation}") from exc
        raise
    assert response is not None, "the form submission did not load a page"
    return response


def at_provider(provider_url: str) -> re.Pattern:
    return re.compile(re.escape(provider_url) + r"/.*")


def portal_home(portal_url: str) -> re.Pattern:
    """The portal's start page, with or without a query (the sign-out answer has one)."""
    return re.compile(re.escape(portal_url) + r"/(\?.*)?$")


def open_login(page: Page, portal_url: str, provider_url: str) -> None:
    """From the portal's start page, click "Sign in" and arrive at the e-mail step."""
    page.goto(portal_url + "/")
    page.locator("a#login").click()
    page.wait_for_url(at_provider(provider_url))
    expect(field(page, "email")).to_be_visible()
    expect(field(page, "password")).to_have_count(0)


def enter_email_and_password(page: Page, person: Person, screenshot: Path | None = None) -> None:
    response = submit(page, email=person.email)
    assert response.ok, f"e-mail step answered {response.status}"
    expect(field(page, "password")).to_be_visible()
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot))
    response = submit(page, password=person.password)
    assert response.ok, f"password step answered {response.status}: {alert_text(page)}"
    expect(field(page, "password")).to_have_count(0)


def alert_text(page: Page) -> str:
    alerts = page.locator('[role="alert"]')
    return " | ".join(alerts.all_inner_texts()) if alerts.count() else "(no alert)"


def first_login(page: Page, portal_url: str, provider_url: str, mailbox, person: Person,
                screenshot: Path | None = None, *, email_verified: bool = False) -> Authenticator:
    """The first sign-in of a new account, from the portal back to the portal:
    e-mail, password, the e-mail address once more and the mailed code (unless an invitation
    confirmed the address), TOTP enrolment."""
    open_login(page, portal_url, provider_url)
    authenticator = first_login_steps(page, mailbox, person, screenshot, email_verified=email_verified)
    page.wait_for_url(portal_home(portal_url))
    expect_signed_in(page, person)
    return authenticator


def first_login_steps(page: Page, mailbox, person: Person, screenshot: Path | None = None, *,
                      email_verified: bool = False) -> Authenticator:
    """The steps of a first sign-in, from the e-mail step until the first authenticator
    code is submitted; where the browser goes next is the caller's to check. An address
    not verified yet is confirmed with a mailed code first; one that an invitation confirmed
    goes straight to the authenticator."""
    enter_email_and_password(page, person, screenshot)
    if email_verified:
        expect(page.locator("img#totp-qr")).to_be_visible()
        expect(field(page, "email")).to_have_count(0)
    else:
        verify_email(page, mailbox, person)

    authenticator = enrol_authenticator(page)
    person.authenticator = authenticator
    submit(page, totp_code=authenticator.code())
    return authenticator


def verify_email(page: Page, mailbox, person: Person) -> None:
    """The first sign-in's check of the address: typed once more, then the mailed code."""
    expect(field(page, "email")).to_be_visible()
    response = submit(page, email=person.email)
    assert response.ok, f"verification step answered {response.status}: {alert_text(page)}"
    expect(field(page, "email_code")).to_be_visible()
    code = mailbox.code_for(person.email)
    response = submit(page, email_code=code)
    assert response.ok, f"e-mail code step answered {response.status}: {alert_text(page)}"


def enrol_authenticator(page: Page) -> Authenticator:
    """On the enrolment step: check that the QR code really renders and read the manual
    key into a new authenticator app (the caller submits its first code)."""
    qr = page.locator("img#totp-qr")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0, f"QR code has no size: {box}"
    natural = qr.evaluate("img => img.complete ? [img.naturalWidth, img.naturalHeight] : [0, 0]")
    assert natural[0] > 0 and natural[1] > 0, "the QR code image did not load"
    secret_text = page.locator("#totp-secret").inner_text()
    secret = re.sub(r"\s+", "", secret_text)
    assert re.fullmatch(r"[A-Z2-7]{16,}=*", secret), f"not a base32 key: {secret_text!r}"
    return Authenticator(secret)


def login(page: Page, portal_url: str, provider_url: str, person: Person) -> None:
    """A later sign-in: e-mail, password, authenticator code, back at the portal."""
    assert person.authenticator is not None, "the person has not enrolled an authenticator yet"
    open_login(page, portal_url, provider_url)
    enter_email_and_password(page, person)
    expect(field(page, "totp_code")).to_be_visible()
    expect(page.locator("img#totp-qr")).to_have_count(0)
    submit(page, totp_code=person.authenticator.code())
    page.wait_for_url(portal_home(portal_url))
    expect_signed_in(page, person)


def expect_signed_in(page: Page, person: Person) -> None:
    whoami = page.locator("#whoami")
    expect(whoami).to_contain_text(person.name)
    expect(whoami).to_contain_text(person.email)
    claims = page.locator("#claims")
    expect(claims).to_be_visible()
    expect(claims).to_contain_text(person.sub)


# -- mail, invitations, the portal's claims ------------------------------------------------


def link_in(mail, base_url: str) -> str:
    """The one link under ``base_url`` in a mail's text part."""
    links = sorted(set(re.findall(re.escape(base_url) + r"/[^\s<>\"']+", mail.text)))
    assert len(links) == 1, f"expected one link under {base_url} in {mail.subject!r}, found {links}:\n{mail.text}"
    return links[0]


RULE_OK = re.compile(r"(^|\s)ok(\s|$)")
RULE_BAD = re.compile(r"(^|\s)bad(\s|$)")


def type_new_password(page: Page, password: str, confirmation: str | None = None) -> None:
    """Type a new password and its confirmation as a person does (the page checks them
    live against the policy)."""
    field(page, "password").fill(password)
    field(page, "password_confirm").fill(password if confirmation is None else confirmation)


def expect_password_rules(page: Page, *, ok: list[str] | None = None, bad: list[str] | None = None) -> None:
    """The live policy list ``#password-rules``: each named rule shown as met or not.
    Without ``ok``/``bad``: every rule is met."""
    rules = page.locator("#password-rules li")
    if ok is None and bad is None:
        expect(rules.first).to_be_visible()
        for i in range(rules.count()):
            expect(rules.nth(i)).to_have_class(RULE_OK)
        return
    for name in ok or []:
        expect(page.locator(f"#password-rules li[data-rule={name}]")).to_have_class(RULE_OK)
    for name in bad or []:
        expect(page.locator(f"#password-rules li[data-rule={name}]")).to_have_class(RULE_BAD)


def accept_invitation(page: Page, url: str, mailbox, email: str, password: str, *,
                      weak_password: str | None = None, contract: tuple[str, ...] = (),
                      mismatch_first: bool = False, open_documents: bool = False) -> None:
    """F2 in the browser, from the link in the invitation mail to the done page: Next,
    the mailed code, a new password (the live policy list turns all green first; a
    ``weak_password`` is typed before it and must show as bad; with ``mismatch_first`` a
    confirmation that differs is sent first and refused, naming the problem), the contract
    data (``contract``: texts it must show), terms and privacy (``open_documents``: each
    checkbox's link opens its document in a new tab, and the step stays as it was), confirm."""
    page.goto(url)
    expect(page.locator("#invitation-email")).to_have_text(email)
    response = submit(page)
    assert response.ok, f"the invitation's first step answered {response.status}: {alert_text(page)}"

    expect(field(page, "email_code")).to_be_visible()
    response = submit(page, email_code=mailbox.code_for(email))
    assert response.ok, f"the invitation's code step answered {response.status}: {alert_text(page)}"

    expect(field(page, "password")).to_be_visible()
    if weak_password is not None:
        type_new_password(page, weak_password)
        expect_password_rules(page, ok=["length", "confirmed"], bad=["not_common", "strong"])
    if mismatch_first:
        type_new_password(page, password, password + "!")
        expect_password_rules(page, ok=["length", "strong"], bad=["confirmed"])
        response = submit(page)
        assert response.status == 400, f"a confirmation that differs answered {response.status}"
        # The refusal names the problem as one, and the list keeps the state of the refused try.
        expect(page.locator('[role="alert"] .problems li')).to_have_text(
            [re.compile(r"passwords are not the same|wachtwoorden zijn niet hetzelfde", re.I)])
        expect_password_rules(page, ok=["length", "strong"], bad=["confirmed"])
    type_new_password(page, password)
    expect_password_rules(page)
    response = submit(page)
    assert response.ok, f"the invitation's password step answered {response.status}: {alert_text(page)}"

    details = page.locator("#contract")
    expect(details).to_contain_text(email)
    for text in contract:
        expect(details).to_contain_text(text)
    if open_documents:
        for link, heading in (("#terms-link", r"terms|voorwaarden"), ("#privacy-link", r"privacy")):
            with page.context.expect_page() as opened:
                page.locator(link).click()
            document = opened.value
            expect(document.locator("h1")).to_have_text(re.compile(heading, re.I))
            document.close()
        expect(field(page, "accept_terms")).not_to_be_checked()
        expect(field(page, "accept_privacy")).not_to_be_checked()
    field(page, "accept_terms").check()
    field(page, "accept_privacy").check()
    response = submit(page)
    assert response.ok, f"confirming the invitation answered {response.status}: {alert_text(page)}"
    expect(page.locator("#step")).to_have_count(0)
    expect(page.locator("a#continue")).to_be_visible()


def portal_administrations(page: Page) -> dict[str, list[dict]]:
    """The ``administrations`` claim as the portal shows it, per table that has it:
    ``{"#claims": [...], "#userinfo": [...]}`` (ID token claims, userinfo answer)."""
    found = {}
    for table in ("#claims", "#userinfo"):
        row = page.locator(f"{table} tr").filter(has=page.locator("th", has_text=re.compile(r"^\s*administrations\s*$")))
        if row.count():
            found[table] = json.loads(row.locator("td").inner_text())
    return found
