"""Bilingual name matching and NID number forms."""

from __future__ import annotations

import pytest

from central_hub.nid.names import names_match, phonetic_key, tokens, transliterate
from central_hub.nid.numbers import mask_nid, nid_key, nid_problems, normalize_nid
from central_hub.nid.population import generate

SAME = [
    ("মোঃ আব্দুল করিম", "Md. Abdul Karim"),
    ("Md Abdul Karim", "Mohammad Abdul Karim"),
    ("Md. Abdul Karim", "Muhammad Abdul Karim"),
    ("Mst. Rahima Khatun", "Mosammat Rahima Khatun"),
    ("মোছাঃ রোকেয়া বেগম", "Mst Rokeya Begum"),
    ("Shahid Hossain", "Shahid Hussain"),
    ("Shahid Hosen", "শহিদ হোসেন"),
    ("Karim Abdul", "Abdul Karim"),
    ("ফাতেমা আক্তার", "Fatema Akhter"),
    ("Fatema Aktar", "Fatima Akter"),
    ("Anwar Chowdhury", "আনোয়ার চৌধুরী"),
    ("Shyamal Chandra Das", "শ্যামল চন্দ্র দাস"),
    ("Abdulkarim", "Abdul Karim"),
    ("মিজানুর রহমান", "Mizanur Rahman"),
    ("Goutam Biswas", "গৌতম বিশ্বাস"),
    ("Mst. Tahmina Nesa", "মোসাম্মৎ তাহমিনা নেছা"),
    ("Md Kamal Hossain", "Kamal Hossain"),  # honorific dropped
    ("Nasrin Sultana", "Nasrin Sulatana"),  # a typo in a long token
]
DIFFERENT = [
    ("Abdul Rahim", "Abdul Karim"),
    ("Rahim", "Rahima"),
    ("Rahim Parvin", "Rahima Parvin"),
    ("Kamal Hossain", "Jamal Hossain"),
    ("রহিমা খাতুন", "Halima Khatun"),
    ("Md. Kamal", "Md. Kamal Hossain Khan"),
    ("Sumi", "Sima"),
    ("", "Abdul Karim"),
    ("Md.", "Abdul Karim"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_names_match_both_ways(a: str, b: str) -> None:
    assert names_match(a, b)
    assert names_match(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_names_do_not_match(a: str, b: str) -> None:
    assert not names_match(a, b)
    assert not names_match(b, a)


def test_every_generated_person_matches_across_scripts() -> None:
    for record in generate(1000, seed=11):
        assert names_match(record.name_bn, record.name_en), record
        assert names_match(record.father_name_bn, record.father_name_en), record
        assert names_match(record.mother_name_bn, record.mother_name_en), record


def test_transliteration_and_keys() -> None:
    assert transliterate("করিম") == "korim"
    assert transliterate("চন্দ্র") == "chondra"
    assert tokens("মোঃ আব্দুল করিম") == ["md", "abdul", "korim"]
    assert tokens("Mosammat Rahima") == ["mst", "rahima"]
    assert {phonetic_key(t) for t in ("hossain", "hussain", "hosen", "hosain")} == {"hsn"}
    assert phonetic_key("rahima") != phonetic_key("rahim")


def test_nid_forms() -> None:
    assert normalize_nid("১৯৯০ ১২৩৪৫৬৭৮৯০১২৩") == "19901234567890123"
    long_key, short_key = nid_key("19901234567890123"), nid_key("1234567890123")
    assert (long_key.kind, long_key.number, long_key.year) == ("national", "1234567890123", 1990)
    assert (short_key.kind, short_key.number, short_key.year) == ("national", "1234567890123", None)
    assert nid_key("1234567890").kind == "smart"
    assert nid_problems("123") and nid_problems("12345678901234") and nid_problems("18001234567890123")
    assert nid_problems("1234567890") == []
    assert mask_nid("1234567890") == "*******890"
