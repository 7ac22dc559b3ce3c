"""The one set of input rules every layer shares: the node's UI and API, and the hub's merge validator.

Pure (marshmallow only; no Flask, no database). Values are normalised as they are validated: Bangla
digits become ASCII, mobiles become 11 digits, NIDs lose spaces and dashes. Messages are English
sentences used as message ids; ``translate`` gives the Bangla of the glossary.

Entry points:

- ``clean(entity, fields, current=None, lang="en") -> (values, errors)``: normalised values, or
  field-level errors (then nothing should be stored).
- ``validate_change(entity, fields, current) -> {field: [messages]}``: the hub's merge validator. Only
  the given fields are checked (partial update), but cross-field rules (a 17-digit NID starts with the
  birth year, death after birth) read the other field from ``current`` when the change lacks it.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from marshmallow import Schema, ValidationError, fields

from . import geo
from .entities import DELETED, ENTITIES

BANGLA_DIGITS = "০১২৩৪৫৬৭৮৯"
_TO_ASCII = str.maketrans(BANGLA_DIGITS, "0123456789")
_TO_BANGLA = str.maketrans("0123456789", BANGLA_DIGITS)

SEXES = ("female", "male", "third_gender")
MARITAL_STATUSES = ("never_married", "married", "widowed", "divorced", "separated", "deserted")
RELATIONS = (
    "head",
    "spouse",
    "son",
    "daughter",
    "father",
    "mother",
    "brother",
    "sister",
    "grandchild",
    "son_in_law",
    "daughter_in_law",
    "other_relative",
    "non_relative",
)
LIFE_STATUSES = ("alive", "deceased", "migrated")
HOUSE_TYPES = ("kutcha", "semi_pucca", "pucca", "jhupri", "other")
ENROLMENT_STATUSES = ("applied", "approved", "active", "suspended", "exited")
PAYMENT_CHANNELS = ("bank", "bkash", "nagad", "rocket", "post_office")
GRIEVANCE_CATEGORIES = (
    "exclusion",
    "inclusion_error",
    "payment_delay",
    "payment_amount",
    "misconduct",
    "data_correction",
    "other",
)
GRIEVANCE_TIERS = ("union", "upazila", "district", "national")
GRIEVANCE_STATUSES = ("received", "under_review", "escalated", "resolved", "rejected", "closed")
GRIEVANCE_EVENT_TYPES = ("comment", "escalate", "resolve", "reject", "reopen", "close")
NID_LENGTHS = (10, 13, 17)

# English message -> Bangla (glossary words where the glossary has them).
MSG_REQUIRED = "Required field"
MSG_INVALID = "Invalid"
MSG_NID_LENGTH = "Must be 10, 13 or 17 digits"
MSG_FUTURE = "Date cannot be in the future"
MSG_NID_YEAR = "A 17-digit NID must begin with the year of birth"
MSG_BRN = "Must be 17 digits"
MSG_MOBILE = "Must be a mobile number like 01712345678"
MSG_DATE = "Must be a date like 1980-01-31"
MSG_CHOICE = "Not one of the allowed values"
MSG_NUMBER = "Must be a number"
MSG_NEGATIVE = "Must not be negative"
MSG_TOO_LONG = "Too long"
MSG_UNION = "Unknown union"
MSG_PROGRAMME = "Unknown programme"
MSG_DEATH_BEFORE_BIRTH = "Date of death cannot be before the date of birth"
MSG_NAME = "Give the name in Bangla or in English"
MSG_COMPLAINANT = "Give the complainant (a registered person, or a name)"
MSG_UNKNOWN_FIELD = "Unknown field"
MSG_DIGITS = "Must contain digits only"
MSG_NOT_FOUND = "No such record on this node"

MESSAGES_BN: dict[str, str] = {
    MSG_REQUIRED: "আবশ্যক তথ্য",
    MSG_INVALID: "সঠিক নয়",
    MSG_NID_LENGTH: "১০, ১৩ অথবা ১৭ অঙ্কের হতে হবে",
    MSG_FUTURE: "ভবিষ্যতের তারিখ দেওয়া যাবে না",
    MSG_NID_YEAR: "১৭ অঙ্কের এনআইডি নম্বর জন্ম সাল দিয়ে শুরু হতে হবে",
    MSG_BRN: "১৭ অঙ্কের হতে হবে",
    MSG_MOBILE: "মোবাইল নম্বর ০১৭১২৩৪৫৬৭৮ এর মতো হতে হবে",
    MSG_DATE: "তারিখ ১৯৮০-০১-৩১ এর মতো হতে হবে",
    MSG_CHOICE: "অনুমোদিত মানগুলোর একটি নয়",
    MSG_NUMBER: "সংখ্যা হতে হবে",
    MSG_NEGATIVE: "ঋণাত্মক হতে পারবে না",
    MSG_TOO_LONG: "অনেক দীর্ঘ",
    MSG_UNION: "ইউনিয়ন পাওয়া যায়নি",
    MSG_PROGRAMME: "কর্মসূচি পাওয়া যায়নি",
    MSG_DEATH_BEFORE_BIRTH: "মৃত্যুর তারিখ জন্ম তারিখের আগে হতে পারে না",
    MSG_NAME: "নাম বাংলায় অথবা ইংরেজিতে দিন",
    MSG_COMPLAINANT: "অভিযোগকারী দিন (নিবন্ধিত ব্যক্তি অথবা নাম)",
    MSG_UNKNOWN_FIELD: "অজানা তথ্য",
    MSG_DIGITS: "শুধু অঙ্ক দিতে হবে",
    MSG_NOT_FOUND: "এই নোডে পাওয়া যায়নি",
}


def translate(message: str, lang: str = "en") -> str:
    if lang.lower().startswith("bn"):
        return MESSAGES_BN.get(message, message)
    return message


def translate_errors(errors: Mapping[str, list[str]], lang: str = "en") -> dict[str, list[str]]:
    return {k: [translate(m, lang) for m in v] for k, v in errors.items()}


# ---- normalisers (pure, idempotent) -------------------------------------------------------------------


def ascii_digits(text: str) -> str:
    """Bangla digits to ASCII; everything else unchanged."""
    return text.translate(_TO_ASCII)


def bangla_digits(text: str) -> str:
    return str(text).translate(_TO_BANGLA)


_SEPARATORS = re.compile(r"[\s\-.]")
_MOBILE = re.compile(r"01[3-9]\d{8}")
_ID = re.compile(r"[0-9A-Za-z\-_]+")
_PUNCTUATION = re.compile(r"[^\w\s]")


def _digits_only(text: str) -> str:
    return _SEPARATORS.sub("", ascii_digits(str(text)))


def normalize_mobile(text: str) -> str | None:
    """``+8801712345678``, ``8801712345678``, ``01712345678`` (any digits, spaces, dashes) ->
    ``01712345678``; None when it is not a Bangladeshi mobile number."""
    s = _digits_only(text)
    if s.startswith("+"):
        s = s[1:]
    if s.startswith("880") and len(s) == 13:
        s = s[2:]
    if _MOBILE.fullmatch(s):
        return s
    return None


def normalize_nid(text: str) -> str:
    return _digits_only(text)


def normalize_name(text: str) -> str:
    """Key for "same name" checks: case-folded, punctuation dropped, spaces collapsed."""
    s = _PUNCTUATION.sub(" ", str(text).casefold())
    return " ".join(s.split())


@cache
def programmes() -> dict[str, dict[str, str]]:
    text = resources.files("sync_protocol").joinpath("data/programmes.csv").read_text(encoding="utf-8")
    return {row["code"]: row for row in csv.DictReader(text.splitlines())}


# ---- marshmallow fields -----------------------------------------------------------------------------


class _Text(fields.String):
    def __init__(self, max_len: int = 200, *, ascii: bool = False, **kw: Any) -> None:
        super().__init__(allow_none=True, **kw)
        self.max_len = max_len
        self.ascii = ascii  # codes and numbers typed with Bangla digits are stored with ASCII digits
        self.error_messages["invalid"] = MSG_INVALID

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        out = super()._deserialize(value, attr, data, **kw)
        out = " ".join(str(out).split())
        if self.ascii:
            out = ascii_digits(out)
        if len(out) > self.max_len:
            raise ValidationError(MSG_TOO_LONG)
        return out or None


class _Choice(fields.String):
    def __init__(self, choices: tuple[str, ...] | Callable[[], Any], **kw: Any) -> None:
        super().__init__(allow_none=True, **kw)
        self.choices = choices
        self.error_messages["invalid"] = MSG_INVALID

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        out = str(super()._deserialize(value, attr, data, **kw)).strip()
        if out == "":
            return None
        allowed = self.choices() if callable(self.choices) else self.choices
        if out not in allowed:
            raise ValidationError(MSG_CHOICE)
        return out


class _Union(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        s = ascii_digits(str(value)).strip()
        if not s:
            return None
        if not geo.union_exists(s):
            raise ValidationError(MSG_UNION)
        return s


class _Programme(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        s = str(value).strip().upper()
        if not s:
            return None
        if s not in programmes():
            raise ValidationError(MSG_PROGRAMME)
        return s


class _Id(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        s = str(value).strip()
        if not s:
            return None
        if len(s) > 64 or not _ID.fullmatch(s):
            raise ValidationError(MSG_INVALID)
        return s


class _Date(fields.Field):
    def __init__(self, past: bool = True, **kw: Any) -> None:
        super().__init__(allow_none=True, **kw)
        self.past = past

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        s = ascii_digits(str(value)).strip()
        if not s:
            return None
        try:
            day = dt.date.fromisoformat(s)
        except ValueError as exc:
            raise ValidationError(MSG_DATE) from exc
        if day.year < 1880:
            raise ValidationError(MSG_DATE)
        if self.past and day > today():
            raise ValidationError(MSG_FUTURE)
        return day.isoformat()


class _Number(fields.Field):
    def __init__(self, integer: bool = False, **kw: Any) -> None:
        super().__init__(allow_none=True, **kw)
        self.integer = integer

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        if isinstance(value, bool):
            raise ValidationError(MSG_NUMBER)
        s = ascii_digits(str(value)).strip().replace(",", "")
        if not s:
            return None
        try:
            num = float(s)
        except ValueError as exc:
            raise ValidationError(MSG_NUMBER) from exc
        if num != num or num in (float("inf"), float("-inf")):
            raise ValidationError(MSG_NUMBER)
        if num < 0:
            raise ValidationError(MSG_NEGATIVE)
        if self.integer:
            if num != int(num):
                raise ValidationError(MSG_NUMBER)
            return int(num)
        return num


class _Bool(fields.Field):
    TRUE = frozenset({"1", "true", "yes", "on", "y"})
    FALSE = frozenset({"0", "false", "no", "off", "n", ""})

    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in self.TRUE:
            return True
        if s in self.FALSE:
            return False
        raise ValidationError(MSG_INVALID)


class _Nid(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        s = normalize_nid(str(value))
        if not s:
            return None
        if not s.isdigit():
            raise ValidationError(MSG_DIGITS)
        if len(s) not in NID_LENGTHS:
            raise ValidationError(MSG_NID_LENGTH)
        return s


class _Brn(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        s = normalize_nid(str(value))
        if not s:
            return None
        if not s.isdigit():
            raise ValidationError(MSG_DIGITS)
        if len(s) != 17:
            raise ValidationError(MSG_BRN)
        return s


class _Mobile(fields.Field):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kw: Any) -> Any:
        if not str(value).strip():
            return None
        out = normalize_mobile(str(value))
        if out is None:
            raise ValidationError(MSG_MOBILE)
        return out


def _opt(field: fields.Field) -> fields.Field:
    field.allow_none = True
    field.error_messages["null"] = MSG_REQUIRED
    field.error_messages["required"] = MSG_REQUIRED
    return field


class HouseholdSchema(Schema):
    union_id = _opt(_Union())
    ward = _opt(_Text(20, ascii=True))
    village = _opt(_Text(100))
    address = _opt(_Text(300))
    head_person_id = _opt(_Id())
    land_decimals = _opt(_Number())
    house_type = _opt(_Choice(HOUSE_TYPES))
    monthly_income_bdt = _opt(_Number(integer=True))
    pmt_score = _opt(_Number())


class PersonSchema(Schema):
    household_id = _opt(_Id())
    full_name_bn = _opt(_Text(150))
    full_name_en = _opt(_Text(150))
    sex = _opt(_Choice(SEXES))
    date_of_birth = _opt(_Date())
    dob_estimated = _opt(_Bool())
    nid = _opt(_Nid())
    brn = _opt(_Brn())
    father_name = _opt(_Text(150))
    mother_name = _opt(_Text(150))
    spouse_name = _opt(_Text(150))
    mobile = _opt(_Mobile())
    relation_to_head = _opt(_Choice(RELATIONS))
    disability = _opt(_Bool())
    occupation = _opt(_Text(100))
    marital_status = _opt(_Choice(MARITAL_STATUSES))
    life_status = _opt(_Choice(LIFE_STATUSES))
    date_of_death = _opt(_Date())


class EnrolmentSchema(Schema):
    person_id = _opt(_Id())
    programme = _opt(_Programme())
    status = _opt(_Choice(ENROLMENT_STATUSES))
    applied_on = _opt(_Date())
    status_changed_on = _opt(_Date())
    payment_channel = _opt(_Choice(PAYMENT_CHANNELS))
    account_number = _opt(_Text(40, ascii=True))
    benefit_amount_bdt = _opt(_Number(integer=True))


class GrievanceSchema(Schema):
    tracking_number = _opt(_Text(64, ascii=True))
    complainant_person_id = _opt(_Id())
    complainant_name = _opt(_Text(150))
    complainant_mobile = _opt(_Mobile())
    programme = _opt(_Programme())
    category = _opt(_Choice(GRIEVANCE_CATEGORIES))
    description = _opt(_Text(2000))
    tier = _opt(_Choice(GRIEVANCE_TIERS))
    status = _opt(_Choice(GRIEVANCE_STATUSES))
    due_on = _opt(_Date(past=False))


class GrievanceEventSchema(Schema):
    grievance_id = _opt(_Id())
    type = _opt(_Choice(GRIEVANCE_EVENT_TYPES))
    note = _opt(_Text(2000))
    tier = _opt(_Choice(GRIEVANCE_TIERS))
    actor = _opt(_Text(128))
    occurred_at = _opt(_Text(40))


SCHEMAS: dict[str, Schema] = {
    "household": HouseholdSchema(),
    "person": PersonSchema(),
    "enrolment": EnrolmentSchema(),
    "grievance": GrievanceSchema(),
    "grievance_event": GrievanceEventSchema(),
}

# Required on creation (``current is None``). One-of requirements are cross-field rules below.
REQUIRED: dict[str, tuple[str, ...]] = {
    "household": ("union_id",),
    "person": ("household_id", "sex", "date_of_birth"),
    "enrolment": ("person_id", "programme", "status"),
    "grievance": ("category", "description"),
    "grievance_event": ("grievance_id", "type"),
}


def today() -> dt.date:
    """Today's date (a function so tests can freeze it)."""
    return dt.date.today()


def _cross_field(
    entity: str, given: Mapping[str, Any], merged: Mapping[str, Any], creating: bool
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if entity == "person":
        nid, dob = merged.get("nid"), merged.get("date_of_birth")
        touched = "nid" in given or "date_of_birth" in given
        if touched and nid and dob and len(str(nid)) == 17 and str(nid)[:4] != str(dob)[:4]:
            errors.setdefault("nid", []).append(MSG_NID_YEAR)
        dod = merged.get("date_of_death")
        if ("date_of_death" in given or "date_of_birth" in given) and dod and dob and str(dod) < str(dob):
            errors.setdefault("date_of_death", []).append(MSG_DEATH_BEFORE_BIRTH)
        if merged.get("life_status") == "deceased" and "life_status" in given and not dod:
            errors.setdefault("date_of_death", []).append(MSG_REQUIRED)
        named = merged.get("full_name_bn") or merged.get("full_name_en")
        if not named and (creating or "full_name_bn" in given or "full_name_en" in given):
            errors.setdefault("full_name_bn", []).append(MSG_NAME)
    elif entity == "grievance":
        has = merged.get("complainant_person_id") or merged.get("complainant_name")
        touched = creating or "complainant_person_id" in given or "complainant_name" in given
        if not has and touched:
            errors.setdefault("complainant_name", []).append(MSG_COMPLAINANT)
    return errors


def _load_with_schema(entity: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The reference: ``Schema.load(partial=True)`` of known, non-None fields. ``_load`` must give the same
    answer (tests/node/test_validation_fastpath.py checks it on generated input)."""
    try:
        return dict(SCHEMAS[entity].load(data, partial=True)), {}
    except ValidationError as exc:
        msgs = exc.normalized_messages()
        assert isinstance(msgs, dict)
        errors = {str(k): list(v) if isinstance(v, list) else [str(v)] for k, v in msgs.items()}
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return dict(valid), errors


_Plain = tuple[tuple[str, Callable[..., Any]], ...]


@cache
def _plain_fields(entity: str) -> _Plain | None:
    """``(name, field._deserialize)`` in the schema's order, when every field is one that ``Schema.load``
    would only pass to ``_deserialize``: no validators, no pre-load hooks, no data key. Calling them
    directly skips marshmallow's per-call machinery, which cost the hub most of ``validate_change``."""
    schema = SCHEMAS[entity]
    if any(schema._hooks.values()):  # pragma: no cover - @pre_load / @validates hooks: marshmallow only
        return None
    out = []
    for name, field in schema.fields.items():
        if field.validators or getattr(field, "pre_load", None) or field.data_key not in (None, name):
            return None  # pragma: no cover - none of ours; keeps the fast path honest if one appears
        out.append((name, field._deserialize))
    return tuple(out)


def _load(entity: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``_load_with_schema`` without marshmallow's per-call machinery; same values, errors and order."""
    plain = _plain_fields(entity)
    if plain is None:  # pragma: no cover
        return _load_with_schema(entity, data)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, deserialize in plain:
        if name not in data:
            continue
        try:
            values[name] = deserialize(data[name], name, data)
        except ValidationError as exc:
            msgs = exc.messages
            errors[name] = list(msgs) if isinstance(msgs, list) else [str(msgs)]
    return values, errors


def clean(
    entity: str,
    data: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    lang: str = "en",
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate and normalise ``data`` for ``entity``: ``(values, {})`` or ``({}, errors)``.

    ``current`` is None when creating: required fields are then checked. Otherwise only the given
    fields are checked, with cross-field rules reading the rest from ``current``."""
    schema = SCHEMAS.get(entity)
    if schema is None:
        raise KeyError(f"unknown entity {entity!r}")
    hub_owned = ENTITIES[entity].hub_owned
    payload = {k: v for k, v in data.items() if k not in hub_owned and k != DELETED}
    errors: dict[str, list[str]] = {}
    unknown = [k for k in payload if k not in schema.fields]
    for k in unknown:
        errors[k] = [MSG_UNKNOWN_FIELD]
        payload.pop(k)
    # None and "" mean "clear this field"; the field types turn "" into None, explicit None passes.
    to_load = {k: v for k, v in payload.items() if v is not None}
    values: dict[str, Any] = {k: None for k, v in payload.items() if v is None}
    loaded, field_errors = _load(entity, to_load)
    values.update(loaded)
    for k, msgs in field_errors.items():
        errors.setdefault(k, []).extend(msgs)
    creating = current is None
    merged = {**(current or {}), **values}
    if creating:
        for name in REQUIRED[entity]:
            if merged.get(name) in (None, "") and name not in errors:
                errors[name] = [MSG_REQUIRED]
    for k, v in _cross_field(entity, values, merged, creating).items():
        if k not in errors:
            errors[k] = v
    if errors:
        return {}, translate_errors(errors, lang)
    return values, {}


def validate_change(
    entity: str, fields: Mapping[str, Any], current: Mapping[str, Any] | None, lang: str = "en"
) -> dict[str, list[str]]:
    """The hub's merge validator: ``{field: [messages]}``, empty when the change is valid."""
    if entity not in SCHEMAS:
        return {"entity": [MSG_INVALID]}
    _, errors = clean(entity, fields, current, lang)
    return errors
