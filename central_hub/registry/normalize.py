"""Normalisation of identity fields for registry matching (pure functions, no I/O).

Every matching key the hub stores is derived here, so a change to any rule must bump
``NORMALISATION_VERSION``: keys computed under different versions must not be compared.

Names are reduced in three steps:

1. honorific prefixes (Md., Mohammad, মোঃ, Mst., মোছাঃ, Sri, শ্রীমতী ...) are removed and kept as a sex hint;
2. Bangla script is transliterated into a Latin skeleton (the "bridge");
3. each Latin token gets a phonetic key that drops vowels and folds aspirates and sibilants, so that
   "মোঃ আব্দুল করিম", "Md. Abdul Karim" and "Abdul Kareem" meet, as do Hossain / Hussain / Hosen.

Weak tokens (Begum, Khatun, Akter ...) are kept apart: half the women in a union carry them, so they are
not evidence of identity.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

NORMALISATION_VERSION = "2026.11-3"

_BN_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")

_HONORIFIC_MALE_EN = {"md", "mohammad", "mohammed", "muhammad", "mohammod", "muhammed", "mohamad", "mohd",
                      "mahammad", "sri", "shri", "sree"}
_HONORIFIC_FEMALE_EN = {"mst", "most", "mosammat", "mosamat", "mosammot", "mossammat", "mustt", "mosst",
                        "srimati", "shrimati", "smt", "mrs"}
# Bangla forms, written without the visarga / dot, which are stripped before lookup.
_HONORIFIC_MALE_BN = {"মো", "মোহাম্মদ", "মুহাম্মদ", "মোহাম্মাদ", "মোহম্মদ", "শ্রী"}
_HONORIFIC_FEMALE_BN = {"মোছা", "মোসা", "মোসাম্মৎ", "মোছাম্মৎ", "মোসাম্মত", "শ্রীমতী", "শ্রীমতি", "মিসেস"}

# Tokens that carry no identity, matched by spelling (not by phonetic key: "Rina" sounds like "Rani" and
# "Babu" like "Bibi", and those are given names). Hindu middle names carried by most men (Kumar, Chandra)
# or women (Rani, Bala) are as weak as Begum / Khatun / Akter.
_WEAK_EN = {"begum", "begom", "khatun", "khatoon", "katun", "akter", "akhter", "aktar", "akhtar", "bibi", "nesa",
            "nessa", "kumar", "chandra", "chondro", "rani", "bala"}
_WEAK_BN = {"বেগম", "খাতুন", "খাতূন", "আক্তার", "আখতার", "আকতার", "বিবি", "নেছা", "নেসা", "কুমার", "চন্দ্র", "রানী",
            "রাণী", "বালা"}

_PUNCT = re.compile(r"[\s.,:;'\"`()\[\]{}/\\\-_ঃ।]+")

# --- Bangla -> Latin bridge -------------------------------------------------------------------------

_BN_CONSONANTS = {
    "ক": "k", "খ": "kh", "গ": "g", "ঘ": "gh", "ঙ": "ng", "চ": "ch", "ছ": "chh", "জ": "j", "ঝ": "jh",
    "ঞ": "n", "ট": "t", "ঠ": "th", "ড": "d", "ঢ": "dh", "ণ": "n", "ত": "t", "থ": "th", "দ": "d",
    "ধ": "dh", "ন": "n", "প": "p", "ফ": "f", "ব": "b", "ভ": "bh", "ম": "m", "য": "j", "র": "r",
    "ল": "l", "শ": "sh", "ষ": "sh", "স": "s", "হ": "h", "\ue001": "r", "\ue002": "rh", "\ue003": "y",
    "ৎ": "t",
}
_BN_VOWELS = {
    "অ": "o", "আ": "a", "ই": "i", "ঈ": "i", "উ": "u", "ঊ": "u", "ঋ": "ri", "এ": "e", "ঐ": "oi",
    "ও": "o", "ঔ": "ou",
}
_BN_SIGNS = {
    "া": "a", "ি": "i", "ী": "i", "ু": "u", "ূ": "u", "ৃ": "ri", "ে": "e", "ৈ": "oi", "ো": "o", "ৌ": "ou",
}
_BN_OTHER = {"ং": "ng", "ঃ": "", "ঁ": "", "়": ""}
_HASANTA = "্"


def bn_digits_to_ascii(text: str) -> str:
    """Replace Bangla digits with ASCII digits; everything else is left alone."""
    return text.translate(_BN_DIGITS)


def has_bangla(text: str) -> bool:
    return any("\u0980" <= ch <= "\u09ff" for ch in text)


def transliterate_bn(text: str) -> str:
    """Bangla script -> a readable Latin skeleton ("আব্দুল করিম" -> "abdul korim"); Latin passes through.

    An inherent vowel "o" is written between consonants and dropped at the end of a word, which is how
    names are spoken; the phonetic key ignores inner vowels anyway.
    """
    text = unicodedata.normalize("NFC", bn_digits_to_ascii(text))
    # NFC decomposes ড় / ঢ় / য় into base + nukta (they are composition exclusions); fold each pair to
    # a private-use stand-in so the letter is read as one consonant.
    text = text.replace("\u09a1\u09bc", "\ue001").replace("\u09a2\u09bc", "\ue002")
    text = text.replace("\u09af\u09bc", "\ue003")
    out: list[str] = []
    chars = list(text)
    for i, ch in enumerate(chars):
        nxt = chars[i + 1] if i + 1 < len(chars) else ""
        if ch in _BN_CONSONANTS:
            if ch in ("য", "ব") and i > 1 and chars[i - 1] == _HASANTA and chars[i - 2] != ch:
                continue  # ya-phala / ba-phala (্য, ্ব) double the previous consonant; no sound of their own
            out.append(_BN_CONSONANTS[ch])
            if nxt and (nxt in _BN_CONSONANTS or nxt in _BN_OTHER) and nxt not in ("ঃ", "ঁ", "়"):
                out.append("o")  # inherent vowel between consonants
        elif ch in _BN_VOWELS:
            out.append(_BN_VOWELS[ch])
        elif ch in _BN_SIGNS:
            out.append(_BN_SIGNS[ch])
        elif ch in _BN_OTHER:
            out.append(_BN_OTHER[ch])
        elif ch == _HASANTA:
            if out and out[-1] == "o":
                out.pop()
        else:
            out.append(ch)
    return "".join(out).lower()


# --- phonetic key ------------------------------------------------------------------------------------

_VOWELS = set("aeiouyw")
_DIGRAPHS = [("chh", "c"), ("ch", "c"), ("sh", "s"), ("ph", "f"), ("kh", "k"), ("gh", "g"),
             ("th", "t"), ("dh", "d"), ("bh", "b"), ("jh", "j"), ("rh", "r"), ("x", "ks"), ("q", "k"),
             ("z", "j"), ("v", "b"), ("c", "k")]


_QUE_END = re.compile(r"que$")
_LONE_C = re.compile(r"c(?!h)")


@lru_cache(maxsize=100_000)
def phonetic_key(token: str) -> str:
    """Latin (or Bangla) token -> phonetic key: consonant skeleton, with 'a' marking an initial vowel.

    "Hossain", "Hussain", "Hosen", "হোসেন" -> "hsn"; "Karim", "Kareem", "করিম" -> "krm".
    Cached: full names are mostly unique, but their tokens repeat across the registry.
    """
    t = transliterate_bn(token) if has_bangla(token) else token.lower()
    t = "".join(ch for ch in unicodedata.normalize("NFKD", t) if "a" <= ch <= "z")
    if not t:
        return ""
    t = _QUE_END.sub("k", t)  # Rafique, Tarique: the final e is silent
    t = _LONE_C.sub("k", t)  # a lone Latin 'c' is a 'k' sound; 'ch' / 'chh' fold to 'c' below
    for src, dst in _DIGRAPHS:
        t = t.replace(src, dst)
    initial_vowel = t[0] in _VOWELS
    while t.endswith("h") and len(t) > 1:
        t = t[:-1]
    skeleton: list[str] = []
    for i, ch in enumerate(t):
        if ch in _VOWELS:
            continue
        if ch == "h" and i > 0:
            continue  # post-vowel / post-consonant h is not written consistently in either script
        if skeleton and skeleton[-1] == ch:
            continue
        skeleton.append(ch)
    # A final vowel is not marked: Bangla leaves the inherent vowel unwritten (সুব্রত / Subrata, ঘোষ / Ghose).
    key = ("a" if initial_vowel else "") + "".join(skeleton)
    return key or "a"


@dataclass(frozen=True)
class NormalName:
    """A name reduced for matching. ``keys`` are the sorted phonetic keys of the identifying tokens."""

    keys: tuple[str, ...]
    weak: tuple[str, ...]
    sex_hint: str | None
    latin: str  # transliterated, honorific-free, lower case; for string similarity

    @property
    def key(self) -> str:
        return " ".join(self.keys)


def _split_tokens(name: str) -> list[str]:
    name = unicodedata.normalize("NFC", bn_digits_to_ascii(name or "")).strip()
    # "মোঃ" is often typed with a colon ("মো:") or a full stop; the punctuation split handles all three.
    return [t for t in _PUNCT.split(name) if t]


@lru_cache(maxsize=200_000)
def normalize_name(name: str | None) -> NormalName:
    """Reduce a person's name written in Bangla or English (honorifics out, token order ignored).

    Cached: registers repeat the same few thousand names, and the result is immutable."""
    sex_hint: str | None = None
    strong: list[str] = []
    weak: list[str] = []
    latin_parts: list[str] = []
    for tok in _split_tokens(name or ""):
        low = tok.lower()
        if low in _HONORIFIC_MALE_EN or tok in _HONORIFIC_MALE_BN:
            sex_hint = sex_hint or "male"
            continue
        if low in _HONORIFIC_FEMALE_EN or tok in _HONORIFIC_FEMALE_BN:
            sex_hint = sex_hint or "female"
            continue
        latin, key = _token(tok)
        if not key:
            continue
        if low in _WEAK_EN or tok in _WEAK_BN:
            weak.append(key)
            continue
        strong.append(key)
        latin_parts.append(latin)
    return NormalName(tuple(sorted(set(strong))), tuple(sorted(set(weak))), sex_hint, " ".join(sorted(latin_parts)))


@lru_cache(maxsize=100_000)
def _token(tok: str) -> tuple[str, str]:
    """(Latin form, phonetic key) of one name token: a token repeats far more often than a full name."""
    latin = transliterate_bn(tok) if has_bangla(tok) else tok.lower()
    return latin, phonetic_key(latin)


# --- identifiers -------------------------------------------------------------------------------------


_NON_DIGIT = re.compile(r"\D")
_MOBILE = re.compile(r"01[3-9]\d{8}")


def digits_only(value: str | None) -> str:
    return _NON_DIGIT.sub("", bn_digits_to_ascii(value or ""))


@dataclass(frozen=True)
class NormalNid:
    """Canonical NID. ``canonical`` is the 13-digit core for 13/17-digit NIDs (a 17-digit NID is the 4-digit
    birth year followed by the 13 digits) and the 10 digits of a smart card; ``kind`` keeps them apart
    because a smart-card number cannot be mapped to the older number offline."""

    canonical: str
    kind: str  # "nid13" | "nid10"
    birth_year: int | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.canonical}"


def normalize_nid(value: str | None, birth_year: int | None = None) -> NormalNid | None:
    """Return the canonical NID or None when the value cannot be an NID (wrong length / empty).

    A 13-digit NID is widened to 17 digits only by callers that know the birth year; matching uses the
    13-digit core so both forms meet.
    """
    d = digits_only(value)
    if len(d) == 17:
        year = int(d[:4])
        return NormalNid(d[4:], "nid13", year if 1900 <= year <= 2100 else None)
    if len(d) == 13:
        return NormalNid(d, "nid13", birth_year)
    if len(d) == 10:
        return NormalNid(d, "nid10", None)
    return None


def nid_to_17(value: str, birth_year: int) -> str:
    """A 13-digit NID in its 17-digit form (birth year prefixed); a 17-digit NID is returned unchanged."""
    d = digits_only(value)
    if len(d) == 17:
        return d
    if len(d) != 13:
        raise ValueError(f"not a 13- or 17-digit NID: {value!r}")
    return f"{birth_year:04d}{d}"


def normalize_brn(value: str | None) -> str | None:
    """Birth registration number: exactly 17 digits, else None."""
    d = digits_only(value)
    return d if len(d) == 17 else None


def normalize_mobile(value: str | None) -> str | None:
    """Bangladeshi mobile -> 11 digits 01[3-9]XXXXXXXX (accepts +880 / 880 / Bangla digits), else None."""
    d = digits_only(value)
    if d.startswith("880"):
        d = d[2:]
    elif d.startswith("0088"):
        d = d[3:]
    if len(d) == 10 and d[0] == "1":
        d = "0" + d
    return d if _MOBILE.fullmatch(d) else None


def normalize_account(value: str | None) -> str | None:
    """Payment account / wallet number: digits only (a wallet is the mobile number)."""
    m = normalize_mobile(value)
    if m:
        return m
    d = digits_only(value)
    return d or None


def parse_date(value: str | date | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(bn_digits_to_ascii(str(value)).strip()[:10])
    except ValueError:
        return None
