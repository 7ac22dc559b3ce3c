"""Every string the hub's pages and forms show has a Bangla translation in the shipped catalogue."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo

import central_hub

ROOT = Path(central_hub.__file__).parent


def test_every_ui_string_has_a_bangla_translation() -> None:
    method_map = [("templates/**.html", "jinja2"), ("*.py", "python")]
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
    found = {
        msg
        for _file, _line, msg, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=keywords)
        if isinstance(msg, str) and msg
    }
    assert "Resolve" in found and "Log in" in found
    with open(ROOT / "translations/bn/LC_MESSAGES/messages.mo", "rb") as f:
        catalog = read_mo(f)
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in found if not translated.get(m))
    assert missing == []
    # the glossary's words where the glossary has them
    assert translated["Resolve"] == "নিষ্পত্তি করুন"
    assert translated["Log in"] == "লগ ইন"
    assert translated["National ID (NID)"] == "জাতীয় পরিচয়পত্র (এনআইডি) নম্বর"
    assert translated["Household"] == "খানা"
