"""Bilingual person-name matching for NID verification.

A field operator types a name in Bangla or English; the EC record has both. Names must meet across
scripts and across the usual spelling variants (Md./Mohammad/Muhammad, Mst./Mosammat,
Hossain/Hussain/Hosen, Akter/Akhter/Aktar, token order) without letting different people meet
(Rahim/Karim, Rahim/Rahima). The approach:

1. transliterate Bangla to a plain Latin spelling (``transliterate``);
2. per token, fold honorific variants to one form and compute a consonant skeleton (``phonetic_key``)
   that ignores vowel quality, doubled letters and aspiration, which is where spellings differ;
3. match token multisets by key, with a rapidfuzz ratio on the Latin spelling as the typo fallback.

This module is deliberately independent of ``central_hub.registry.normalize`` (the merging helper's
normaliser): the two serve different precision needs and evolve separately.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import fuzz

_VOWELS = {
    "অ": "o", "আ": "a", "ই": "i", "ঈ": "i", "উ": "u", "ঊ": "u", "ঋ": "ri",
    "এ": "e", "ঐ": "oi", "ও": "o", "ঔ": "ou",
}  # fmt: skip
_SIGNS = {
    "া": "a", "ি": "i", "ী": "i", "ু": "u", "ূ": "u", "ৃ": "ri", "ে": "e", "ৈ": "oi", "ো": "o", "ৌ": "ou",
}  # fmt: skip
_CONSONANTS = {
    "ক": "k", "খ": "kh", "গ": "g", "ঘ": "gh", "ঙ": "ng", "চ": "ch", "ছ": "chh", "জ": "j", "ঝ": "jh",
    "ঞ": "n", "ট": "t", "ঠ": "th", "ড": "d", "ঢ": "dh", "ণ": "n", "ত": "t", "থ": "th", "দ": "d",
    "ধ": "dh", "ন": "n", "প": "p", "ফ": "ph", "ব": "b", "ভ": "bh", "ম": "m", "য": "j", "র": "r",
    "ল": "l", "শ": "sh", "ষ": "sh", "স": "s", "হ": "h", "ড়": "r", "ঢ়": "rh", "য়": "y", "ৎ": "t",
}  # fmt: skip
_OTHERS = {"ং": "ng", "ঃ": "", "ঁ": "", "়": ""}
_HASANTA = "্"

# Honorifics fold to one form each; they are commonly added or dropped, so matching ignores them
# unless a name has nothing else.
_MALE_HONORIFICS = {
    "md", "mohammad", "mohammed", "muhammad", "muhammed", "mohamad", "muhamad", "mohd", "mohmmad", "mo",
    "মো", "মোহাম্মদ", "মোহাম্মাদ", "মুহাম্মদ", "মুহম্মদ", "মোহম্মদ",
}  # fmt: skip
_FEMALE_HONORIFICS = {
    "mst", "mosammat", "mosammot", "mosamat", "musammat", "mossammat", "most", "mosa", "mossa",
    "মোসাম্মৎ", "মোসাম্মত", "মোছাম্মৎ", "মোছাম্মত", "মোসা", "মোছা", "মোসাঃ", "মোছাঃ", "মসা",
}  # fmt: skip
_HONORIFIC_FORMS = {"md", "mst"}
_TOKEN_SPLIT = re.compile(r"[\s,;/]+")
_TRIM = ".:ঃ'`\"()-"

# Latin spelling folds, longest first: aspiration and spelling habits that vary between writers.
_FOLDS = (
    # ছ (chh) in names is said, and mostly written in English, as "s": নেছা Nesa, মোছাম্মৎ Mosammat
    ("chh", "s"), ("sch", "s"), ("kh", "k"), ("gh", "g"), ("ch", "c"), ("jh", "j"), ("th", "t"), ("dh", "d"),
    ("ph", "f"), ("bh", "b"), ("sh", "s"), ("rh", "r"), ("ck", "k"), ("q", "k"), ("z", "j"), ("v", "b"),
    ("w", "o"), ("x", "ks"),
)  # fmt: skip


def _is_bangla(ch: str) -> bool:
    return "\u0980" <= ch <= "\u09ff"


def transliterate(text: str) -> str:
    """Bangla script to a plain, lower-case Latin spelling; other characters pass through (lowered).

    Inherent vowels are written only after a word's first consonant (রহমান -> "rohman"): the
    phonetic key drops vowels anyway, and this keeps the Latin form close to common English spellings
    for the fuzzy fallback.
    """
    text = unicodedata.normalize("NFC", text)
    # NFC composes ড় etc. into precomposed code points that the table does not list; decompose those.
    text = text.replace("\u09dc", "ড়").replace("\u09dd", "ঢ়").replace("\u09df", "য়")
    out: list[str] = []
    i = 0
    word_start = True
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "়":  # nukta: fold consonant + nukta into its own letter
            combined = ch + nxt
            if combined in _CONSONANTS:
                ch, nxt = combined, text[i + 2] if i + 2 < len(text) else ""
                i += 1
        if ch in _CONSONANTS:
            if ch in "যব" and out and out[-1] == _HASANTA:  # য-/ব-phala: a glide (বিশ্বাস Biswas)
                out.pop()
                out.append("y" if ch == "য" else "w")
            else:
                conjunct = bool(out) and out[-1] == _HASANTA
                if conjunct:
                    out.pop()
                out.append(_CONSONANTS[ch])
                # a word-final conjunct keeps its inherent vowel (চন্দ্র -> "chondra", মিত্র -> "mitra")
                if conjunct and not (nxt and _is_bangla(nxt)):
                    out.append("a")
            if word_start and nxt and nxt in _CONSONANTS:
                out.append("o")
            word_start = False
        elif ch in _SIGNS:
            out.append(_SIGNS[ch])
        elif ch in _VOWELS:
            out.append(_VOWELS[ch])
            word_start = False
        elif ch == _HASANTA:
            out.append(_HASANTA)
        elif ch in _OTHERS:
            out.append(_OTHERS[ch])
        elif _is_bangla(ch):
            pass  # digits, dandas and rare signs carry nothing for a name
        else:
            out.append(ch.lower())
            word_start = not ch.isalpha()
        i += 1
    return "".join(c for c in out if c != _HASANTA)


def tokens(name: str) -> list[str]:
    """Latin tokens of a name with honorifics folded to "md" / "mst"."""
    result: list[str] = []
    for raw in _TOKEN_SPLIT.split(name.strip()):
        # "Md." and "মোঃ" carry their abbreviation mark; the honorific lists are without it.
        bare = raw.strip(_TRIM).lower()
        if not bare:
            continue
        if bare in _MALE_HONORIFICS:
            result.append("md")
            continue
        if bare in _FEMALE_HONORIFICS:
            result.append("mst")
            continue
        latin = re.sub(r"[^a-z]", "", transliterate(bare))
        if latin in _MALE_HONORIFICS:
            result.append("md")
        elif latin in _FEMALE_HONORIFICS:
            result.append("mst")
        elif latin:
            result.append(latin)
    return result


@lru_cache(maxsize=65536)
def phonetic_key(token: str) -> str:
    """Consonant skeleton of a Latin token: Hossain/Hussain/Hosen -> "hsn", Rahima -> "rhma".

    A leading vowel is kept as "a" (Ekramul/Ikramul) and a final "a" is kept, because it separates
    female from male given names (Rahima/Rahim, Fatema/Fatem).
    """
    if token in _HONORIFIC_FORMS:
        return token
    word = token.lower()
    for old, new in _FOLDS:
        word = word.replace(old, new)
    if not word:
        return ""
    lead = "a" if word[0] in "aeiouy" else word[0]
    body = "".join(c for c in word[1:] if c not in "aeiouy")
    final_a = "a" if len(word) > 1 and word[-1] == "a" else ""
    key = lead + body
    collapsed = "".join(c for i, c in enumerate(key) if i == 0 or c != key[i - 1])
    return collapsed + final_a


def _meaningful(toks: list[str]) -> list[str]:
    rest = [t for t in toks if t not in _HONORIFIC_FORMS]
    return rest or toks


def _token_match(a: str, b: str) -> bool:
    ka, kb = phonetic_key(a), phonetic_key(b)
    if ka == kb:
        return True
    # Typo fallback, only for longer tokens where one slip leaves most of the word intact, and never
    # across a different first sound or a female/male ending (Rahima/Rahim).
    if min(len(a), len(b)) < 5 or ka[:1] != kb[:1] or ka.endswith("a") != kb.endswith("a"):
        return False
    return fuzz.ratio(a, b) >= 85


def name_score(a: str, b: str) -> float:
    """0..100 similarity of two names in any script (for reports and tuning; matching uses ``names_match``)."""
    ka = " ".join(sorted(phonetic_key(t) for t in _meaningful(tokens(a))))
    kb = " ".join(sorted(phonetic_key(t) for t in _meaningful(tokens(b))))
    return float(fuzz.token_sort_ratio(ka, kb))


def names_match(a: str, b: str) -> bool:
    """Whether two names, in Bangla or English script, name the same person's name."""
    ta, tb = _meaningful(tokens(a)), _meaningful(tokens(b))
    if not ta or not tb:
        return False
    if len(ta) == len(tb):
        remaining = list(tb)
        for tok in ta:
            hit = next((i for i, other in enumerate(remaining) if _token_match(tok, other)), None)
            if hit is None:
                break
            remaining.pop(hit)
        else:
            return True
        return False
    # "Abdulkarim" vs "Abdul Karim": different token counts, so compare the joined skeletons in written
    # order (only then: joining hides a token's final "a", which must keep Rahim and Rahima apart)
    return phonetic_key("".join(ta)) == phonetic_key("".join(tb))
