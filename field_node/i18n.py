"""Language choice (Bangla / English) and labels of the fixed value lists, through Flask-Babel."""

from __future__ import annotations

from flask import request, session
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from sync_protocol.validation import bangla_digits

LANGUAGES = ("en", "bn")


def select_locale() -> str:
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    if not request.path.startswith("/api/") and session.get("lang") in LANGUAGES:
        return str(session["lang"])
    return request.accept_languages.best_match(LANGUAGES) or "en"


def current_lang() -> str:
    loc = get_locale()
    return loc.language if loc is not None else "en"


def digits(value: object) -> str:
    """Numbers in the script of the page: the glossary asks for Bangla digits in the Bangla UI."""
    text = "" if value is None else str(value)
    return bangla_digits(text) if current_lang() == "bn" else text


def when(value: object) -> str:
    """An ISO-8601 UTC time as an operator reads it ("2026-11-24 19:59 UTC"), in the page's digits."""
    text = "" if value is None else str(value)
    if len(text) >= 16 and text[10] == "T":
        text = f"{text[:10]} {text[11:16]} UTC"
    return digits(text)


LABELS = {
    "sex": {"female": _l("Female"), "male": _l("Male"), "third_gender": _l("Third gender")},
    "marital_status": {
        "never_married": _l("Never married"),
        "married": _l("Married"),
        "widowed": _l("Widowed"),
        "divorced": _l("Divorced"),
        "separated": _l("Separated"),
        "deserted": _l("Deserted"),
    },
    "relation_to_head": {
        "head": _l("Household head"),
        "spouse": _l("Spouse"),
        "son": _l("Son"),
        "daughter": _l("Daughter"),
        "father": _l("Father"),
        "mother": _l("Mother"),
        "brother": _l("Brother"),
        "sister": _l("Sister"),
        "grandchild": _l("Grandchild"),
        "son_in_law": _l("Son-in-law"),
        "daughter_in_law": _l("Daughter-in-law"),
        "other_relative": _l("Other relative"),
        "non_relative": _l("Not related"),
    },
    "life_status": {"alive": _l("Alive"), "deceased": _l("Deceased"), "migrated": _l("Migrated")},
    # NID verification results from the hub (glossary: যাচাইকৃত / তথ্যে অমিল / পাওয়া যায়নি / যাচাই অপেক্ষমাণ)
    "nid_status": {
        "verified": _l("Verified"),
        "mismatch": _l("Mismatch"),
        "not_found": _l("Not found"),
        "pending": _l("Pending"),
        "error": _l("Could not be checked"),
    },
    "nid_field": {
        "name": _l("Name"),
        "date_of_birth": _l("Date of birth"),
        "father_name": _l("Father's name"),
        "mother_name": _l("Mother's name"),
    },
    "house_type": {
        "kutcha": _l("Kutcha (mud/bamboo)"),
        "semi_pucca": _l("Semi-pucca"),
        "pucca": _l("Pucca (brick)"),
        "jhupri": _l("Hut (jhupri)"),
        "other": _l("Other"),
    },
    "enrolment_status": {
        "applied": _l("Applied"),
        "approved": _l("Approved"),
        "active": _l("Active"),
        "suspended": _l("Suspended"),
        "exited": _l("Exited"),
    },
    "payment_channel": {
        "bank": _l("Bank account"),
        "bkash": _l("bKash"),
        "nagad": _l("Nagad"),
        "rocket": _l("Rocket"),
        "post_office": _l("Post office"),
    },
    "category": {
        "exclusion": _l("Exclusion"),
        "inclusion_error": _l("Inclusion error"),
        "payment_delay": _l("Payment delay"),
        "payment_amount": _l("Payment amount"),
        "misconduct": _l("Misconduct"),
        "data_correction": _l("Data correction"),
        "other": _l("Other"),
    },
    "tier": {"union": _l("Union"), "upazila": _l("Upazila"), "district": _l("District"), "national": _l("National")},
    "grievance_status": {
        "received": _l("Received"),
        "under_review": _l("Under review"),
        "escalated": _l("Escalated"),
        "resolved": _l("Resolved"),
        "rejected": _l("Rejected"),
        "closed": _l("Closed"),
    },
    "event_type": {
        "comment": _l("Comment"),
        "escalate": _l("Escalate"),
        "resolve": _l("Resolve"),
        "reject": _l("Reject"),
        "reopen": _l("Reopen"),
        "close": _l("Close"),
    },
}


def label(kind: str, value: object) -> str:
    if value is None or value == "":
        return ""
    return str(LABELS.get(kind, {}).get(str(value), value))


def label_options(kind: str) -> list[tuple[str, str]]:
    return [(code, str(text)) for code, text in LABELS.get(kind, {}).items()]
