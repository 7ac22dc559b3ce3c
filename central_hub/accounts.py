"""Staff accounts: roles, geographic scope, password hashing, login with throttling, session tokens.

A staff member sees and acts only on records of the unions inside their scope (all / division /
district / upazila / union). The same session token serves the JSON API (``Authorization: Bearer``)
and the web pages (kept in the signed Flask session cookie).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from sync_protocol import geo

from .errors import AuthError, InvalidRequestError, ThrottledError
from .store import SqlHubStore, StaffRecord, iso, utc_now

ROLES = ("admin", "resolver", "reviewer", "auditor")
SCOPE_LEVELS = ("all", "division", "district", "upazila", "union")

# What each role may do. Reviewers read conflicts and records but do not decide; auditors read the
# service access log only (no personal data).
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"conflicts.view", "conflicts.resolve", "persons.view", "log.view"}),
    "resolver": frozenset({"conflicts.view", "conflicts.resolve", "persons.view"}),
    "reviewer": frozenset({"conflicts.view", "persons.view"}),
    "auditor": frozenset({"log.view"}),
}

PASSWORD_METHOD = "scrypt"
MIN_PASSWORD = 8
SESSION_HOURS = 12
THROTTLE_FAILURES = 5
THROTTLE_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class Staff:
    username: str
    role: str
    scope_level: str
    scope_id: str | None

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def unions(self) -> frozenset[str] | None:
        """Union ids in scope; ``None`` means every union."""
        return scope_unions(self.scope_level, self.scope_id)

    def sees_union(self, union_id: str) -> bool:
        unions = self.unions
        return unions is None or union_id in unions


@cache
def scope_unions(level: str, scope_id: str | None) -> frozenset[str] | None:
    if level == "all":
        return None
    out = set()
    for union in geo.unions().values():
        division, district, upazila, _u = geo.union_path(union.id)
        place = {"division": division, "district": district, "upazila": upazila, "union": union}[level]
        if place.id == scope_id:
            out.add(union.id)
    return frozenset(out)


def check_scope(level: str, scope_id: str | None) -> None:
    tables = {"division": geo.divisions, "district": geo.districts, "upazila": geo.upazilas, "union": geo.unions}
    if level not in SCOPE_LEVELS:
        raise InvalidRequestError("unknown scope", {"scope": [f"must be one of {', '.join(SCOPE_LEVELS)}"]})
    if level != "all" and (scope_id is None or str(scope_id) not in tables[level]()):
        raise InvalidRequestError("unknown place", {"scope": [f"no {level} with id {scope_id!r}"]})


def add_staff(
    store: SqlHubStore,
    username: str,
    password: str,
    role: str,
    scope_level: str = "all",
    scope_id: str | None = None,
    *,
    hash_method: str = PASSWORD_METHOD,
) -> Staff:
    """Create or update an account. ``hash_method`` is werkzeug's (``scrypt`` = n 2**15, r 8, p 1); tests
    pass a cheaper one, the CLI never does."""
    errors: dict[str, list[str]] = {}
    if not username or len(username) > 64 or not username.replace("_", "").replace(".", "").isalnum():
        errors["username"] = ["use 1-64 letters, digits, '.' or '_'"]
    if len(password) < MIN_PASSWORD:
        errors["password"] = [f"at least {MIN_PASSWORD} characters"]
    if role not in ROLES:
        errors["role"] = [f"must be one of {', '.join(ROLES)}"]
    if errors:
        raise InvalidRequestError("invalid staff account", errors)
    check_scope(scope_level, scope_id)
    record = StaffRecord(
        username,
        generate_password_hash(password, method=hash_method),
        role,
        scope_level,
        None if scope_level == "all" else str(scope_id),
    )
    store.put_staff(record)
    return Staff(record.username, record.role, record.scope_level, record.scope_id)


def _staff(record: StaffRecord) -> Staff:
    return Staff(record.username, record.role, record.scope_level, record.scope_id)


def login(store: SqlHubStore, username: str, password: str, *, now: float | None = None) -> str:
    """Check the password and open a session; returns its token. Throttled per account."""
    current = time.time() if now is None else now
    if store.login_failures_since(username, int(current - THROTTLE_WINDOW_S)) >= THROTTLE_FAILURES:
        raise ThrottledError(f"too many failed logins; try again in {THROTTLE_WINDOW_S // 60} minutes")
    record = store.get_staff(username)
    if record is None or not record.active or not check_password_hash(record.password_hash, password):
        store.record_login_failure(username, int(current))
        raise AuthError("wrong username or password")
    store.clear_login_failures(username)
    token = secrets.token_urlsafe(32)
    store.add_session(token, username, iso(utc_now() + dt.timedelta(hours=SESSION_HOURS)))
    return token


def staff_for_token(store: SqlHubStore, token: str) -> Staff | None:
    if not token:
        return None
    username = store.session_user(token, iso(utc_now()))
    if username is None:
        return None
    record = store.get_staff(username)
    return _staff(record) if record is not None and record.active else None
