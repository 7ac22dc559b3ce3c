"""NID number forms.

Bangladesh has three NID forms: the 10-digit smart-card number, the old 13-digit number and the
17-digit number, which is the 4-digit birth year followed by the 13-digit number. The 13- and 17-digit
forms name the same identity; the 10-digit number is an unrelated key (it cannot be derived offline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_BANGLA_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
_SEPARATORS = re.compile(r"[\s\-]")


def normalize_nid(raw: str) -> str:
    """Bangla digits to ASCII, spaces and dashes dropped; no validation."""
    return _SEPARATORS.sub("", raw.translate(_BANGLA_DIGITS))


def nid_problems(nid: str, date_of_birth: date | None = None) -> list[str]:
    """Messages for a normalised NID that cannot exist; empty when it is well formed."""
    if not nid.isascii() or not nid.isdigit():
        return ["NID must contain digits only"]
    if len(nid) not in (10, 13, 17):
        return [f"NID must have 10, 13 or 17 digits, not {len(nid)}"]
    if len(nid) == 17:
        year = int(nid[:4])
        if not 1900 <= year <= date.today().year:
            return [f"a 17-digit NID starts with the birth year; {nid[:4]} is not a plausible year"]
        if date_of_birth is not None and year != date_of_birth.year:
            return [f"a 17-digit NID starts with the birth year; {nid[:4]} is not {date_of_birth.year}"]
    return []


@dataclass(frozen=True)
class NidKey:
    """The lookup key of an NID: 13/17-digit forms share a key, the 10-digit form has its own."""

    kind: str  # "smart" (10 digits) or "national" (13 digits, the 17-digit form without its year)
    number: str
    year: int | None  # the birth year a 17-digit form carries; None for 10 and 13 digits


def nid_key(nid: str) -> NidKey:
    if len(nid) == 10:
        return NidKey("smart", nid, None)
    if len(nid) == 13:
        return NidKey("national", nid, None)
    if len(nid) == 17:
        return NidKey("national", nid[4:], int(nid[:4]))
    raise ValueError(f"not an NID length: {len(nid)}")


def mask_nid(nid: str) -> str:
    """For logs: enough to tell requests apart, not enough to identify a person."""
    return "*" * max(len(nid) - 3, 0) + nid[-3:]
