"""The Dutch catalog: complete, consistent with the code and the compiled .mo, and used
by the pages and mails (Dutch by default, English on ?lang=en or Accept-Language: en)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
try:
    from babel.messages.frontend import parse_mapping_cfg
except ImportError:  # Babel < 2.14
    from babel.messages.frontend import parse_mapping as parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from tests.helpers import last_mail

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "translations" / "nl" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def _forms(value) -> list[str]:
    return list(value) if isinstance(value, (list, tuple)) else [value or ""]


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text.replace("%%", "")))


@pytest.fixture(scope="module")
def catalog():
    with PO.open("rb") as f:
        return read_po(f, locale="nl")


@pytest.fixture(scope="module")
def nl(catalog):
    """msgid -> Dutch text, for the assertions on pages and mails."""
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str)}


# -- the catalog ------------------------------------------------------------


def test_catalog_is_complete(catalog):
    assert not catalog.fuzzy, "the header of messages.po is marked fuzzy: pybabel compile would skip it"
    untranslated = [m.id for m in catalog if m.id and not all(s.strip() for s in _forms(m.string))]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"untranslated in {PO.name}: {untranslated}"
    assert not fuzzy, f"fuzzy in {PO.name}: {fuzzy}"
    assert len([m for m in catalog if m.id]) > 0


def test_placeholders_match_the_english_text(catalog):
    wrong = []
    for m in catalog:
        if not m.id:
            continue
        expected = set().union(*(placeholders(i) for i in _forms(m.id)))
        for text in _forms(m.string):
            if placeholders(text) != expected:
                wrong.append((m.id, text))
    assert not wrong, wrong


def test_every_text_in_the_code_is_in_the_catalog(catalog):
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, filename=str(ROOT / "babel.cfg"))
    sources = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS
        )
    }
    missing = sorted(m for m in sources if m and catalog.get(m) is None)
    assert not missing, f"not in {PO.name} yet, run `python scripts/i18n.py update` and translate: {missing}"


def _mo_messages(file) -> dict:
    """msgid -> msgstr; a plural message's forms as tuples."""
    def plain(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {plain(m.id): plain(m.string) for m in read_mo(file) if m.id}


def test_compiled_catalog_matches_the_po(catalog):
    assert MO.exists(), "run `python scripts/i18n.py compile`"
    fresh = io.BytesIO()
    write_mo(fresh, catalog)
    fresh.seek(0)
    expected = _mo_messages(fresh)
    with MO.open("rb") as f:
        compiled = _mo_messages(f)
    assert compiled == expected, "messages.mo is out of date: run `python scripts/i18n.py compile`"


# -- pages and mails ----------------------------------------------------------


class _StepButton(HTMLParser):
    """The text of the submit button of the step form."""

    def __init__(self):
        super().__init__()
        self.in_form = self.in_button = False
        self.text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "step":
            self.in_form = True
        elif tag == "button" and self.in_form and a.get("type", "submit") == "submit":
            self.in_button = True

    def handle_endtag(self, tag):
        if tag == "button":
            self.in_button = False
        elif tag == "form":
            self.in_form = False

    def handle_data(self, data):
        if self.in_button:
            self.text += data


def button_text(html: str) -> str:
    parser = _StepButton()
    parser.feed(html)
    return parser.text.strip()


def html_lang(html: str) -> str | None:
    match = re.search(r"<html[^>]*\blang=\"([^\"]+)\"", html)
    return match.group(1) if match else None


def with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def test_login_page_is_dutch_by_default(browser, portal, nl):
    browser.authorize(portal["client_id"])
    assert browser.status == 200, browser.text
    assert browser.step_state == "email"
    assert html_lang(browser.text) == "nl"
    assert nl["Next"] != "Next"
    assert button_text(browser.text) == nl["Next"]
    assert nl["E-mail address"] in browser.text


def test_login_page_in_english_with_lang_parameter(browser, portal, nl):
    browser.authorize(portal["client_id"])
    browser.get(with_query(browser.url, "lang=en"))
    assert browser.status == 200, browser.text
    assert browser.step_state == "email"
    assert html_lang(browser.text) == "en"
    assert button_text(browser.text) == "Next"
    assert nl["E-mail address"] not in browser.text


def test_login_page_in_english_with_accept_language(browser, portal):
    browser.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    browser.authorize(portal["client_id"])
    assert browser.status == 200, browser.text
    assert html_lang(browser.text) == "en"
    assert button_text(browser.text) == "Next"


def test_lang_parameter_wins_over_accept_language(browser, portal, nl):
    browser.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    browser.authorize(portal["client_id"])
    browser.get(with_query(browser.url, "lang=nl"))
    assert html_lang(browser.text) == "nl"
    assert button_text(browser.text) == nl["Next"]


def _up_to_the_email_code(browser, portal, person):
    """The first sign-in up to the e-mail code (as Browser.sign_in walks it)."""
    browser.authorize(portal["client_id"])
    browser.submit(email=person["email"])
    assert browser.step_state == "password", (browser.status, browser.alert)
    browser.submit(password=person["password"])
    assert browser.step_state == "verify_email", (browser.status, browser.alert)
    browser.submit(email=person["email"])
    assert browser.step_state == "email_code", (browser.status, browser.alert)
    return last_mail(browser.app, person["email"])


def test_email_code_page_and_mail_are_dutch_by_default(browser, portal, person, nl):
    mail = _up_to_the_email_code(browser, portal, person)
    assert html_lang(browser.text) == "nl"
    assert button_text(browser.text) == nl["Verify code"]

    code = re.search(r"\b(\d{6})\b", mail.text).group(1)
    assert mail.subject == nl["Your verification code: %(code)s"] % {"code": code}
    assert nl["Your verification code is:"] in mail.text
    assert "Your verification code" not in mail.text
    assert html_lang(mail.html) == "nl"
    assert nl["Your verification code is:"] in mail.html


def test_email_code_mail_in_english_when_the_pages_are(browser, portal, person, nl):
    browser.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    mail = _up_to_the_email_code(browser, portal, person)
    assert html_lang(browser.text) == "en"
    assert mail.subject.startswith("Your verification code: ")
    assert "Your verification code is:" in mail.text
    assert nl["Your verification code is:"] not in mail.text
    assert html_lang(mail.html) == "en"


def test_the_browsers_language_is_asked_once_per_request_and_ui_locales_still_win(app):
    from flask import g

    from idp.web.i18n import current_locale

    with app.test_request_context(headers={"Accept-Language": "en-GB,en;q=0.9"}):
        assert current_locale() == "en"
        assert current_locale() == "en"
        g.ui_locales = "nl-BE"  # set later in the request (the flow's authorization asked for it)
        assert current_locale() == "nl"
        g.ui_locales = None
        assert current_locale() == "en"
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert current_locale() == "nl"  # none of ours: the first language
