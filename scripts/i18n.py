"""Translations of the provider's pages and mails.

    python scripts/i18n.py update    extract the texts of idp/ and templates/ into
                                     translations/messages.pot and merge them into
                                     the Dutch catalog (created on first use)
    python scripts/i18n.py compile   translations/*/LC_MESSAGES/messages.po -> .mo
    python scripts/i18n.py check     exit 1 when the Dutch catalog is incomplete:
                                     untranslated or fuzzy messages, placeholders
                                     that differ from the English text, texts in
                                     the code that are not in the catalog yet, or
                                     a messages.mo that differs from its .po

English is the source language and needs no catalog; Dutch is the default.
Run from anywhere: paths are taken relative to the repository root.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALE = "nl"
PO = TRANSLATIONS / LOCALE / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = ["_l", "lazy_gettext"]

# %(name)s style placeholders, and bare %s / %d; "%%" is a literal percent sign.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]+)\))?[-#0 +]*\d*(?:\.\d+)?(?P<type>[diouxXeEfFgGcrsa%])")


def pybabel(*args: str, quiet: bool = False) -> None:
    """Run pybabel of the Python running this script (the project's venv)."""
    exe = Path(sys.executable).parent / "pybabel"
    command = [str(exe) if exe.exists() else "pybabel", *(["--quiet"] if quiet else []), *args]
    subprocess.run(command, cwd=ROOT, check=True)


def _version() -> str:
    match = re.search(r'^__version__ = "([^"]+)"', (ROOT / "idp" / "__init__.py").read_text(), re.M)
    return match.group(1) if match else "0"


def extract(output: Path, quiet: bool = False) -> None:
    args = ["extract", "-F", "babel.cfg", "--project=idp", f"--version={_version()}",
            "--add-comments=Translators:", "--sort-by-file"]
    for keyword in KEYWORDS:
        args += ["-k", keyword]
    args += ["-o", str(output), "."]
    pybabel(*args, quiet=quiet)


def update() -> int:
    TRANSLATIONS.mkdir(exist_ok=True)
    extract(POT)
    if PO.exists():
        pybabel("update", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", LOCALE,
                "--no-fuzzy-matching", "--ignore-obsolete")
    else:
        pybabel("init", "-i", str(POT), "-d", str(TRANSLATIONS), "-l", LOCALE)
    missing = problems()
    if missing:
        print(f"{len(missing)} message(s) in {PO.relative_to(ROOT)} still need a translation.")
    return 0


def compile_catalogs() -> int:
    pybabel("compile", "-d", str(TRANSLATIONS), "--statistics")
    return 0


def placeholders(text: str) -> set[str]:
    """The placeholders of a message: {'%(name)s', '%s', ...}, without literal '%%'."""
    return {m.group(0) for m in PLACEHOLDER.finditer(text) if m.group("type") != "%"}


def _forms(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value or ""]


def problems(po_path: Path = PO) -> list[str]:
    """One line per message of the catalog that is untranslated, fuzzy or has other
    placeholders than its English text."""
    from babel.messages.pofile import read_po

    if not po_path.exists():
        return [f"{po_path} does not exist: run `python scripts/i18n.py update`"]
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=LOCALE)
    found = []
    if catalog.fuzzy:
        found.append("fuzzy: the catalog header (pybabel compile skips a fuzzy catalog)")
    for message in catalog:
        if not message.id:
            continue
        ids = _forms(message.id)
        texts = _forms(message.string)
        label = ids[0]
        if message.fuzzy:
            found.append(f"fuzzy: {label!r}")
        elif not all(t.strip() for t in texts):
            found.append(f"untranslated: {label!r}")
        else:
            expected = set().union(*(placeholders(i) for i in ids))
            for text in texts:
                if placeholders(text) - expected or (len(ids) == 1 and placeholders(text) != expected):
                    found.append(f"placeholders differ: {label!r} -> {text!r}")
                    break
    return found


def _not_in_catalog() -> list[str]:
    from babel.messages.pofile import read_po

    if not PO.exists():
        return []
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        extract(pot, quiet=True)
        with pot.open("rb") as f:
            sources = read_po(f)
    with PO.open("rb") as f:
        catalog = read_po(f, locale=LOCALE)
    return [f"not in the catalog yet (run update): {m.id!r}" for m in sources
            if m.id and catalog.get(m.id, m.context) is None]


def mo_messages(file) -> dict:
    """msgid -> msgstr of a compiled catalog; a plural message's forms as tuples."""
    from babel.messages.mofile import read_mo

    def plain(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {plain(m.id): plain(m.string) for m in read_mo(file) if m.id}


def _mo_current() -> list[str]:
    """The .mo must hold exactly what compiling the .po gives."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if not PO.exists():
        return []
    if not MO.exists():
        return [f"{MO.relative_to(ROOT)} is missing: run `python scripts/i18n.py compile`"]
    with PO.open("rb") as f:
        catalog = read_po(f, locale=LOCALE)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    fresh = mo_messages(buffer)
    with MO.open("rb") as f:
        current = mo_messages(f)
    if fresh != current:
        return [f"{MO.relative_to(ROOT)} is out of date: run `python scripts/i18n.py compile`"]
    return []


def check() -> int:
    found = problems() + _not_in_catalog() + _mo_current()
    for line in found:
        print(line)
    if found:
        print(f"{PO.relative_to(ROOT)}: {len(found)} problem(s)", file=sys.stderr)
        return 1
    print(f"{PO.relative_to(ROOT)}: complete")
    return 0


COMMANDS = {"update": update, "compile": compile_catalogs, "check": check}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return COMMANDS[argv[0]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
