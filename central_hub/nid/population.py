"""Synthetic population for the EC simulator: JSON lines, one person per line.

Each record: ``nid`` (10, 13 or 17 digits), ``name_bn``, ``name_en``, ``sex``, ``date_of_birth``,
``father_name_bn``, ``father_name_en``, ``mother_name_bn``, ``mother_name_en``. Names are drawn from
common Bangladeshi given names and family names in both scripts, Muslim and Hindu, with the honorifics
(মোঃ / Md., মোসাম্মৎ / Mst.) that NID cards carry. Seeded, so a population can be regenerated exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

MALE_GIVEN = [
    ("আব্দুল করিম", "Abdul Karim"), ("আব্দুর রহিম", "Abdur Rahim"), ("কামাল", "Kamal"), ("জামাল", "Jamal"),
    ("শহিদুল", "Shahidul"), ("মিজানুর", "Mizanur"), ("নুরুল", "Nurul"), ("আনোয়ার", "Anwar"),
    ("রফিকুল", "Rafiqul"), ("সাইফুল", "Saiful"), ("আমিনুল", "Aminul"), ("জাহাঙ্গীর", "Jahangir"),
    ("মাহবুব", "Mahbub"), ("হাবিবুর", "Habibur"), ("আলমগীর", "Alamgir"), ("আবুল কালাম", "Abul Kalam"),
    ("মোস্তফা", "Mostafa"), ("ফারুক", "Faruk"), ("মনিরুল", "Monirul"), ("রাশেদ", "Rashed"),
    ("সোহেল", "Sohel"), ("তানভীর", "Tanvir"), ("আরিফ", "Arif"), ("হারুন", "Harun"), ("ইউসুফ", "Yusuf"),
]  # fmt: skip
MALE_FAMILY = [
    ("হোসেন", "Hossain"), ("ইসলাম", "Islam"), ("রহমান", "Rahman"), ("উদ্দিন", "Uddin"), ("আলী", "Ali"),
    ("মিয়া", "Mia"), ("সরকার", "Sarkar"), ("চৌধুরী", "Chowdhury"), ("মন্ডল", "Mondal"), ("শেখ", "Sheikh"),
    ("হক", "Haque"), ("খান", "Khan"), ("আহমেদ", "Ahmed"), ("তালুকদার", "Talukder"), ("পাটোয়ারী", "Patwary"),
]  # fmt: skip
FEMALE_GIVEN = [
    ("রহিমা", "Rahima"), ("ফাতেমা", "Fatema"), ("রোকেয়া", "Rokeya"), ("নাসরিন", "Nasrin"), ("শাহনাজ", "Shahnaz"),
    ("জাহানারা", "Jahanara"), ("তাহমিনা", "Tahmina"), ("আয়েশা", "Ayesha"), ("সালমা", "Salma"), ("রাশিদা", "Rashida"),
    ("মরিয়ম", "Moriom"), ("শিরিন", "Shirin"), ("হালিমা", "Halima"), ("কুলসুম", "Kulsum"), ("রুমানা", "Rumana"),
    ("পারভীন", "Parvin"), ("মাহমুদা", "Mahmuda"), ("সুফিয়া", "Sufia"), ("আমেনা", "Amena"), ("জোবেদা", "Jobeda"),
]  # fmt: skip
FEMALE_FAMILY = [
    ("খাতুন", "Khatun"), ("বেগম", "Begum"), ("আক্তার", "Akter"), ("সুলতানা", "Sultana"), ("পারভীন", "Parvin"),
    ("বিবি", "Bibi"), ("নেছা", "Nesa"), ("ইয়াসমিন", "Yasmin"),
]  # fmt: skip
HINDU_MALE_GIVEN = [
    ("শ্যামল", "Shyamal"), ("গৌতম", "Goutam"), ("সুবীর", "Subir"), ("প্রদীপ", "Prodip"), ("অমল", "Amal"),
    ("নিখিল", "Nikhil"), ("বিপ্লব", "Biplob"), ("সঞ্জয়", "Sanjoy"),
]  # fmt: skip
HINDU_FEMALE_GIVEN = [
    ("দীপিকা", "Dipika"), ("মিতা", "Mita"), ("শিপ্রা", "Shipra"), ("অঞ্জলি", "Anjali"), ("কল্পনা", "Kalpona"),
    ("সুমিতা", "Sumita"),
]  # fmt: skip
HINDU_MIDDLE = {"male": ("কুমার", "Kumar"), "female": ("রানী", "Rani")}
HINDU_FAMILY = [
    ("দাস", "Das"), ("সাহা", "Saha"), ("রায়", "Roy"), ("ঘোষ", "Ghosh"), ("পাল", "Paul"), ("দে", "Dey"),
    ("বিশ্বাস", "Biswas"), ("চক্রবর্তী", "Chakraborty"),
]  # fmt: skip
MALE_HONORIFIC = ("মোঃ", "Md.")
FEMALE_HONORIFIC = ("মোসাম্মৎ", "Mst.")


@dataclass(frozen=True)
class PopulationRecord:
    nid: str
    name_bn: str
    name_en: str
    sex: str
    date_of_birth: str
    father_name_bn: str
    father_name_en: str
    mother_name_bn: str
    mother_name_en: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _join(*parts: tuple[str, str] | None) -> tuple[str, str]:
    used = [p for p in parts if p]
    return " ".join(p[0] for p in used), " ".join(p[1] for p in used)


def _person_name(rng: random.Random, sex: str, hindu: bool, family: tuple[str, str] | None = None) -> tuple[str, str]:
    if hindu:
        given = rng.choice(HINDU_MALE_GIVEN if sex == "male" else HINDU_FEMALE_GIVEN)
        middle = HINDU_MIDDLE[sex] if rng.random() < 0.5 else None
        return _join(given, middle, family or rng.choice(HINDU_FAMILY))
    if sex == "male":
        honorific = MALE_HONORIFIC if rng.random() < 0.6 else None
        return _join(honorific, rng.choice(MALE_GIVEN), family or rng.choice(MALE_FAMILY))
    honorific = FEMALE_HONORIFIC if rng.random() < 0.4 else None
    return _join(honorific, rng.choice(FEMALE_GIVEN), rng.choice(FEMALE_FAMILY))


def generate(count: int, *, seed: int = 1) -> Iterator[PopulationRecord]:
    """``count`` people with unique NIDs: about 45% 17-digit, 20% 13-digit, 35% 10-digit smart cards."""
    rng = random.Random(seed)
    used: set[str] = set()
    produced = 0
    while produced < count:
        sex = "female" if rng.random() < 0.5 else "male"
        hindu = rng.random() < 0.1
        dob = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 66))
        form = rng.random()
        # 13 digits: district (2) + RMO (1) + upazila (2) + union (2) + serial (6)
        base13 = f"{rng.randrange(1, 65):02d}{rng.randrange(1, 10)}{rng.randrange(1, 100):02d}" + (
            f"{rng.randrange(1, 100):02d}{rng.randrange(0, 10**6):06d}"
        )
        if form < 0.45:
            nid = f"{dob.year}{base13}"
        elif form < 0.65:
            nid = base13
        else:
            nid = f"{rng.randrange(1, 10)}{rng.randrange(0, 10**9):09d}"
        key = nid[4:] if len(nid) == 17 else nid
        if key in used:
            continue
        used.add(key)
        family = rng.choice(HINDU_FAMILY) if hindu else rng.choice(MALE_FAMILY)
        name_bn, name_en = _person_name(rng, sex, hindu, family if sex == "male" else None)
        father_bn, father_en = _person_name(rng, "male", hindu, family)
        mother_bn, mother_en = _person_name(rng, "female", hindu)
        produced += 1
        yield PopulationRecord(
            nid, name_bn, name_en, sex, dob.isoformat(), father_bn, father_en, mother_bn, mother_en
        )


def write_population(path: Path, records: Iterable[PopulationRecord]) -> int:
    written = 0
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            written += 1
    return written


def read_population(path: Path) -> list[PopulationRecord]:
    """Read a population file; a bad line is reported with its line number."""
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(PopulationRecord(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: not a population record ({exc})") from exc
    return records
