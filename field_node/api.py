"""JSON API (DESIGN section 6): ``/api/v1/...`` with bearer tokens. Errors are
``{"errors": {field: [messages]}}`` with a 4xx status, in the language of ``?lang=`` or Accept-Language."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_babel import gettext as _

from sync_protocol import validation as v

from .errors import (
    FieldNodeError,
    LoginError,
    LoginThrottledError,
    NodeLockedError,
    NotFoundError,
    PossibleDuplicateError,
    SyncFailedError,
    ValidationFailed,
)
from .i18n import current_lang

bp = Blueprint("api", __name__, url_prefix="/api/v1")

ENTITY_ROUTES = {"households": "household", "persons": "person", "enrolments": "enrolment", "grievances": "grievance"}


def _state() -> Any:
    from .app import state

    return state()


def _errors(errors: dict[str, list[str]], status: int, **extra: Any) -> tuple[Any, int]:
    return jsonify({"errors": errors, **extra}), status


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationFailed({"_schema": [v.translate(v.MSG_INVALID, current_lang())]})
    return data


def require_token(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        operator = _state().tokens.operator(token) if token else None
        if operator is None:
            return _errors({"authorization": [_("Log in first: send Authorization: Bearer <token>")]}, 401)
        g.operator = operator
        return view(*args, **kwargs)

    return wrapper


@bp.errorhandler(FieldNodeError)
def _node_error(exc: FieldNodeError) -> tuple[Any, int]:
    if isinstance(exc, ValidationFailed):
        return _errors(exc.errors, 422)
    if isinstance(exc, PossibleDuplicateError):
        return _errors(
            {"duplicate": [_("Possible duplicate: a person with the same NID or name and date of birth exists")]},
            409,
            duplicates=exc.matches,
        )
    if isinstance(exc, LoginThrottledError):
        return _errors(
            {"password": [_("Too many failed logins; try again in %(s)s seconds", s=int(exc.retry_after) + 1)]}, 429
        )
    if isinstance(exc, LoginError):
        return _errors({"password": [_("Wrong operator name or password")]}, 401)
    if isinstance(exc, NodeLockedError):
        return _errors({"_schema": [_("The database is locked; an operator must log in first")]}, 423)
    if isinstance(exc, NotFoundError):
        return _errors({"id": [_("Not found")]}, 404)
    if isinstance(exc, SyncFailedError):
        status = 409 if exc.code == "not_enrolled" else 502
        return _errors({"sync": [exc.message]}, status, code=exc.code)
    return _errors({"_schema": [exc.message]}, exc.status if 400 <= exc.status < 600 else 400)


@bp.post("/session")
def session_create() -> Any:
    data = _body()
    username, password = str(data.get("username") or ""), str(data.get("password") or "")
    missing = {k: [v.translate(v.MSG_REQUIRED, current_lang())] for k in ("username", "password") if not data.get(k)}
    if missing:
        raise ValidationFailed(missing)
    st = _state()
    operator = st.node.login(username, password)
    return jsonify({"token": st.tokens.issue(operator), "operator": operator}), 201


def _limit(default: int) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    try:
        value = int(v.ascii_digits(raw))
    except ValueError:
        value = 0
    if not 1 <= value <= 500:
        raise ValidationFailed({"limit": [v.translate(v.MSG_INVALID, current_lang())]})
    return value


def _list(entity: str) -> Any:
    reg = _state().registry
    if entity == "person" and request.args.get("q"):
        items = reg.search_persons(request.args["q"], limit=_limit(20))
        return jsonify({"items": items, "next": None})
    filters = {k: val for k, val in request.args.items() if k not in ("cursor", "limit", "lang", "q")}
    items, nxt = reg.list(entity, after=request.args.get("cursor"), limit=_limit(50), filters=filters)
    return jsonify({"items": items, "next": nxt})


def _create(entity: str, data: dict[str, Any]) -> Any:
    reg, lang, actor = _state().registry, current_lang(), g.operator
    confirm = bool(data.pop("confirm_duplicate", False))
    if entity == "household":
        members = data.pop("members", []) or []
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise ValidationFailed({"members": [v.translate(v.MSG_INVALID, lang)]})
        return reg.create_household(data, members, actor=actor, lang=lang, confirm_duplicates=confirm)
    if entity == "person":
        return reg.create_person(data, actor=actor, lang=lang, confirm_duplicates=confirm)
    if entity == "enrolment":
        return reg.create_enrolment(data, actor=actor, lang=lang)
    return reg.create_grievance(data, actor=actor, lang=lang)


def _get(entity: str, entity_id: str) -> dict[str, Any]:
    reg = _state().registry
    getter = {
        "household": reg.get_household,
        "person": reg.get_person,
        "enrolment": reg.get_enrolment,
        "grievance": reg.get_grievance,
    }[entity]
    result: dict[str, Any] = getter(entity_id)
    return result


def _patch(entity: str, entity_id: str, data: dict[str, Any]) -> dict[str, Any]:
    reg, lang, actor = _state().registry, current_lang(), g.operator
    if entity == "household":
        return reg.update_household(entity_id, data, actor=actor, lang=lang)
    if entity == "person":
        return reg.update_person(entity_id, data, actor=actor, lang=lang)
    if entity == "enrolment":
        return reg.update_enrolment(entity_id, data, actor=actor, lang=lang)
    # Grievance state moves only by events; the record's other fields are fixed at intake.
    raise ValidationFailed({"_schema": [_("Change a grievance by adding an event")]})


def _register_entity(route: str, entity: str) -> None:
    @require_token
    def collection() -> Any:
        if request.method == "GET":
            return _list(entity)
        return jsonify(_create(entity, _body())), 201

    @require_token
    def item(entity_id: str) -> Any:
        if request.method == "GET":
            return jsonify(_get(entity, entity_id))
        return jsonify(_patch(entity, entity_id, _body()))

    bp.add_url_rule(f"/{route}", f"{route}_collection", collection, methods=["GET", "POST"])
    bp.add_url_rule(f"/{route}/<entity_id>", f"{route}_item", item, methods=["GET", "PATCH"])


for _route, _entity in ENTITY_ROUTES.items():
    _register_entity(_route, _entity)


@bp.post("/grievances/<gid>/events")
@require_token
def grievance_event(gid: str) -> Any:
    reg = _state().registry
    return jsonify(reg.add_grievance_event(gid, _body(), actor=g.operator, lang=current_lang())), 201


@bp.post("/sync")
@require_token
def sync_now() -> Any:
    from .agent import agent_of

    agent = agent_of(current_app)  # the same round as the background agent and the UI button
    snap = agent.sync_now()
    return jsonify({"summary": snap["last_summary"], "status": {**_state().registry.sync_status(), "agent": snap}})


@bp.get("/sync/status")
@require_token
def sync_status() -> Any:
    from .agent import agent_of

    return jsonify({**_state().registry.sync_status(), "agent": agent_of(current_app).snapshot()})


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
