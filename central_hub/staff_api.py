"""The staff JSON API: session, conflict queue and resolution, persons from the hub's record state.

Bearer tokens only (no cookies), so these routes need no CSRF token. Errors answer
``{"error": {"code", "message"}, "errors": {field: [messages]}}`` with a 4xx status.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask_wtf.csrf import CSRFProtect

from sync_protocol import geo
from sync_protocol.entities import DELETED, ENTITIES
from sync_protocol.errors import SyncProtocolError
from sync_protocol.model import Conflict, RecordState

from . import accounts
from .access import set_actor, set_outcome
from .app import hub
from .errors import AuthError, ForbiddenError, HubError, InvalidRequestError, NotFoundError
from .store import iso, utc_now

bp = Blueprint("staff_api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])
CONFLICT_STATUS = {"conflict_not_found": 404, "conflict_already_resolved": 409}
CHOICES = ("hub", "incoming", "value")


def _error(code: str, message: str, status: int, errors: dict[str, list[str]] | None = None) -> tuple[Response, int]:
    set_outcome(code)
    return jsonify({"error": {"code": code, "message": message}, "errors": errors or {"request": [message]}}), status


@bp.errorhandler(HubError)
def _hub_error(exc: HubError) -> tuple[Response, int]:
    return _error(exc.code, exc.message, exc.status, getattr(exc, "errors", None))


@bp.errorhandler(SyncProtocolError)
def _protocol_error(exc: SyncProtocolError) -> tuple[Response, int]:
    errors = exc.details.get("errors") if isinstance(exc.details.get("errors"), dict) else None
    return _error(exc.code, exc.message, CONFLICT_STATUS.get(exc.code, 400), errors)


def bearer_staff() -> accounts.Staff | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return accounts.staff_for_token(hub().store, token.strip())


def requires(permission: str) -> Callable[[F], F]:
    def wrap(view: F) -> F:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            staff = bearer_staff()
            if staff is None:
                raise AuthError("log in first: POST /api/v1/session, then send Authorization: Bearer <token>")
            set_actor(f"staff:{staff.username}")
            if not staff.can(permission):
                raise ForbiddenError(f"role {staff.role} may not do this")
            g.staff = staff
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def _json_object() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequestError("send a JSON object", {"body": ["expected a JSON object"]})
    return data


@bp.post("/session")
def session() -> Response:
    data = _json_object()
    username, password = data.get("username"), data.get("password")
    errors = {
        name: ["required"]
        for name, v in (("username", username), ("password", password))
        if not isinstance(v, str) or not v
    }
    if errors:
        raise InvalidRequestError("username and password are required", errors)
    set_actor(f"staff:{str(username)[:60]}")
    token = accounts.login(hub().store, str(username), str(password))
    return jsonify({"token": token})


@bp.delete("/session")
def end_session() -> tuple[str, int]:
    staff = bearer_staff()
    if staff is None:
        raise AuthError("no session to end: send Authorization: Bearer <token>")
    set_actor(f"staff:{staff.username}")
    hub().store.drop_session(request.headers["Authorization"].partition(" ")[2].strip())
    return "", 204


def union_label(union_id: str) -> str:
    try:
        _div, _dist, upazila, union = geo.union_path(union_id)
    except KeyError:
        return union_id
    return f"{union.name_en}, {upazila.name_en}"


def conflict_item(conflict: Conflict, labels: dict[str, str]) -> dict[str, Any]:
    item = conflict.to_json()
    item["union_name"] = union_label(conflict.scope)
    item["node_label"] = labels.get(conflict.node_id, conflict.node_id)
    return item


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequestError("bad cursor", {"cursor": ["use the `next` value of the previous page"]}) from exc


def conflict_filters(args: Any) -> dict[str, Any]:
    """The queue's filters from query arguments (shared by the API and the web page)."""
    errors: dict[str, list[str]] = {}
    status = args.get("status", "open") or "open"
    if status not in ("open", "resolved", "all"):
        errors["status"] = ["one of open, resolved, all"]
    entity = args.get("entity") or None
    if entity is not None and entity not in ENTITIES:
        errors["entity"] = [f"one of {', '.join(sorted(ENTITIES))}"]
    union = args.get("union") or None
    if union is not None and not geo.union_exists(union):
        errors["union"] = [f"no union with id {union!r}"]
    created_before = None
    age = args.get("older_than_days") or None
    if age is not None:
        try:
            days = int(age)
            if not 0 <= days <= 3650:
                raise ValueError(days)
            created_before = iso(utc_now() - dt.timedelta(days=days))
        except ValueError:
            errors["older_than_days"] = ["a whole number of days from 0 to 3650"]
    try:
        limit = int(args.get("limit", 50))
        if not 1 <= limit <= 500:
            raise ValueError(limit)
    except ValueError:
        errors["limit"] = ["a whole number from 1 to 500"]
        limit = 50
    if errors:
        raise InvalidRequestError("invalid filter", errors)
    return {
        "status": None if status == "all" else status,
        "entity": entity,
        "union": union,
        "created_before": created_before,
        "limit": limit,
    }


def conflict_page(staff: accounts.Staff, filters: dict[str, Any], after_id: str | None) -> tuple[list[Conflict], bool]:
    limit = filters["limit"]
    items = hub().store.conflict_page(
        status=filters["status"],
        unions=staff.unions,
        entity=filters["entity"],
        union=filters["union"],
        created_before=filters["created_before"],
        after_id=after_id,
        limit=limit + 1,
    )
    return items[:limit], len(items) > limit


@bp.get("/conflicts")
@requires("conflicts.view")
def conflicts() -> Response:
    filters = conflict_filters(request.args)
    cursor = request.args.get("cursor")
    items, more = conflict_page(g.staff, filters, _decode_cursor(cursor) if cursor else None)
    labels = hub().store.node_labels(c.node_id for c in items)
    return jsonify(
        {
            "items": [conflict_item(c, labels) for c in items],
            "next": _encode_cursor(items[-1].id) if more else None,
        }
    )


def visible_conflict(staff: accounts.Staff, conflict_id: str) -> Conflict:
    conflict = hub().store.get_conflict(conflict_id)
    if conflict is None or not staff.sees_union(conflict.scope):
        raise NotFoundError(f"no conflict {conflict_id} in your area")
    return conflict


@bp.get("/conflicts/<conflict_id>")
@requires("conflicts.view")
def conflict(conflict_id: str) -> Response:
    found = visible_conflict(g.staff, conflict_id)
    return jsonify(conflict_item(found, hub().store.node_labels([found.node_id])))


def resolve_conflict(
    staff: accounts.Staff, conflict_id: str, choice: Any, value: Any, note: Any, has_value: bool
) -> tuple[Conflict, int]:
    errors: dict[str, list[str]] = {}
    if choice not in CHOICES:
        errors["choice"] = ["one of hub, incoming, value"]
    if choice == "value" and not has_value:
        errors["value"] = ["required when choice is value"]
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        errors["note"] = ["text of at most 2000 characters"]
    if errors:
        raise InvalidRequestError("invalid resolution", errors)
    visible_conflict(staff, conflict_id)
    try:
        resolved, entry = hub().engine.resolve(
            conflict_id, str(choice), value=value, note=note or "", actor=staff.username
        )
    except ValueError as exc:  # a value the merge rules cannot write
        raise InvalidRequestError("invalid resolution", {"value": [str(exc)]}) from exc
    return resolved, entry.hub_seq


@bp.post("/conflicts/<conflict_id>/resolve")
@requires("conflicts.resolve")
def resolve(conflict_id: str) -> Response:
    data = _json_object()
    resolved, hub_seq = resolve_conflict(
        g.staff, conflict_id, data.get("choice"), data.get("value"), data.get("note"), "value" in data
    )
    item = conflict_item(resolved, hub().store.node_labels([resolved.node_id]))
    item["hub_seq"] = hub_seq
    return jsonify(item)


def person_json(record: RecordState) -> dict[str, Any]:
    values = {k: v for k, v in record.values().items() if k != DELETED}
    return {
        **values,
        "id": record.entity_id,
        "union_id": record.scope,
        "hub_rev": max((f.rev for f in record.fields.values()), default=0),
    }


def _ascii_digits(text: str) -> str:
    return text.translate(str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")).strip()


@bp.get("/persons")
@requires("persons.view")
def persons() -> Response:
    nid = _ascii_digits(request.args.get("nid", ""))
    if not nid.isdigit() or len(nid) not in (10, 13, 17):
        raise InvalidRequestError("give a national ID", {"nid": ["must be 10, 13 or 17 digits"]})
    store = hub().store
    ids = store.person_ids_by_nid(nid, g.staff.unions)
    records = store.load_records([("person", i) for i in ids])
    items = [person_json(records[("person", i)]) for i in ids if ("person", i) in records]
    return jsonify({"items": items, "next": None})


@bp.get("/persons/<person_id>")
@requires("persons.view")
def person(person_id: str) -> Response:
    record = hub().store.get_record("person", person_id)
    if record is None or record.deleted or not g.staff.sees_union(record.scope):
        raise NotFoundError(f"no person {person_id} in your area")
    return jsonify(person_json(record))


def init_app(app: Flask, csrf: CSRFProtect) -> None:
    csrf.exempt(bp)  # bearer tokens, never cookies
    app.register_blueprint(bp)
