"""Staff web pages: log in, the conflict queue (filters, three-way view, resolution) and the access log.

Forms carry CSRF tokens (Flask-WTF). Every page checks the role and the staff member's geographic
scope exactly as the JSON API does, through the same helpers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from sync_protocol import geo
from sync_protocol.entities import ENTITIES
from sync_protocol.errors import SyncProtocolError

from . import accounts, staff_api
from .access import set_actor, set_outcome
from .app import hub
from .errors import AuthError, HubError, InvalidRequestError, ThrottledError

bp = Blueprint("web", __name__)
F = TypeVar("F", bound=Callable[..., Any])


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    pass


class ResolveForm(FlaskForm):
    choice = RadioField(
        _l("Decision"),
        choices=[
            ("hub", _l("Keep the hub value")),
            ("incoming", _l("Take the incoming value")),
            ("value", _l("Enter a value")),
        ],
        validators=[DataRequired()],
    )
    value = StringField(_l("New value"), validators=[Optional(), Length(max=500)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


# What staff read for entity, field and role names (the JSON names are the msgids' keys, not the text).
LABELS: dict[str, Any] = {
    "household": _l("Household"),
    "person": _l("Person"),
    "enrolment": _l("Enrolment"),
    "grievance": _l("Grievance"),
    "grievance_event": _l("Grievance event"),
    "admin": _l("Administrator"),
    "resolver": _l("Conflict resolver"),
    "reviewer": _l("Reviewer"),
    "auditor": _l("Auditor"),
    "full_name_bn": _l("Name (Bangla)"),
    "full_name_en": _l("Name (English)"),
    "nid": _l("National ID (NID)"),
    "brn": _l("Birth registration number"),
    "mobile": _l("Mobile number"),
    "date_of_birth": _l("Date of birth"),
    "dob_estimated": _l("Date of birth estimated"),
    "father_name": _l("Father's name"),
    "mother_name": _l("Mother's name"),
    "spouse_name": _l("Spouse's name"),
    "sex": _l("Sex"),
    "marital_status": _l("Marital status"),
    "life_status": _l("Alive / deceased / migrated"),
    "date_of_death": _l("Date of death"),
    "occupation": _l("Occupation"),
    "disability": _l("Disability"),
    "relation_to_head": _l("Relation to head"),
    "household_id": _l("Household"),
    "head_person_id": _l("Household head"),
    "union_id": _l("Union"),
    "ward": _l("Ward"),
    "village": _l("Village"),
    "address": _l("Address"),
    "land_decimals": _l("Land owned (decimals)"),
    "house_type": _l("House type"),
    "monthly_income_bdt": _l("Monthly income"),
    "pmt_score": _l("Poverty score"),
    "person_id": _l("Person"),
    "programme": _l("Programme"),
    "status": _l("Status"),
    "applied_on": _l("Applied on"),
    "status_changed_on": _l("Status changed on"),
    "payment_channel": _l("Payment channel"),
    "account_number": _l("Bank account / mobile wallet"),
    "benefit_amount_bdt": _l("Benefit amount"),
    "tracking_number": _l("Tracking number"),
    "complainant_person_id": _l("Complainant"),
    "complainant_name": _l("Complainant's name"),
    "complainant_mobile": _l("Complainant's mobile number"),
    "category": _l("Category"),
    "description": _l("Description"),
    "tier": _l("Tier"),
    "due_on": _l("Due date"),
    "_deleted": _l("Record deleted"),
}


def label(name: str) -> str:
    return str(LABELS.get(name, name))


# Enough of the record for staff to know whose data they are deciding on.
SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    "person": ("full_name_bn", "full_name_en", "date_of_birth", "nid", "father_name", "mother_name"),
    "household": ("village", "ward", "address"),
    "enrolment": ("person_id", "programme", "status"),
    "grievance": ("tracking_number", "programme", "category", "status"),
}


def current_staff() -> accounts.Staff | None:
    token = session.get("token")
    return accounts.staff_for_token(hub().store, token) if isinstance(token, str) else None


def page(permission: str) -> Callable[[F], F]:
    def wrap(view: F) -> F:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            staff = current_staff()
            if staff is None:
                return redirect(url_for("web.login", next=request.full_path))
            set_actor(f"staff:{staff.username}")
            g.staff = staff
            if not staff.can(permission):
                set_outcome("forbidden")
                abort(403)
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def show(value: Any) -> str:
    """A stored JSON value as staff read it."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def parse_value(text: str, like: list[Any]) -> Any:
    """Turn a typed value into the type of the values it replaces (a number stays a number, an NID
    stays text even though it is all digits)."""
    text = text.strip()
    sample = next((v for v in like if v is not None), None)
    if text == "":
        return None
    if isinstance(sample, bool):
        if text.lower() in ("true", "yes", "1", "হ্যাঁ"):
            return True
        if text.lower() in ("false", "no", "0", "না"):
            return False
        raise ValueError(_("Enter yes or no"))
    if isinstance(sample, int):
        try:
            return int(text)
        except ValueError as exc:
            raise ValueError(_("Enter a whole number")) from exc
    if isinstance(sample, float):
        try:
            return float(text)
        except ValueError as exc:
            raise ValueError(_("Enter a number")) from exc
    return text


@bp.get("/")
def index() -> Response:
    staff = current_staff()
    if staff is None:
        return redirect(url_for("web.login"))
    return redirect(url_for("web.conflicts" if staff.can("conflicts.view") else "web.access_log"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        set_actor(f"staff:{form.username.data[:60]}")
        try:
            session["token"] = accounts.login(hub().store, form.username.data, form.password.data)
        except ThrottledError:
            set_outcome("too_many_attempts")
            error = _("Too many failed logins. Try again in 15 minutes.")
        except AuthError:
            set_outcome("unauthorized")
            error = _("Wrong username or password.")
        else:
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("web.index")
            return redirect(target)
    elif request.method == "POST":
        set_outcome("invalid_form")
        error = _("Fill in both fields.") if not form.csrf_token.errors else _("The form expired; try again.")
    return render_template("login.html", form=form, error=error), (401 if error else 200)


@bp.post("/logout")
def logout() -> Response:
    form = LogoutForm()
    if form.validate_on_submit():
        token = session.pop("token", None)
        if isinstance(token, str):
            hub().store.drop_session(token)
    return redirect(url_for("web.login"))


@bp.get("/conflicts")
@page("conflicts.view")
def conflicts() -> Any:
    errors: dict[str, list[str]] = {}
    try:
        filters = staff_api.conflict_filters(request.args)
    except InvalidRequestError as exc:
        errors = exc.errors
        filters = staff_api.conflict_filters({})
    after = request.args.get("after") or None
    items, more = staff_api.conflict_page(g.staff, filters, after)
    labels = hub().store.node_labels(c.node_id for c in items)
    offered = set(hub().store.conflict_unions(filters["status"], g.staff.unions))
    if filters["union"]:
        offered.add(filters["union"])
    places = geo.unions()
    union_choices = sorted(
        ((uid, places[uid].name_en, places[uid].name_bn) for uid in offered if uid in places), key=lambda u: u[1]
    )
    return render_template(
        "conflicts.html",
        items=items,
        labels=labels,
        more=more,
        filters=request.args,
        errors=errors,
        entities=sorted(ENTITIES),
        union_label=staff_api.union_label,
        show=show,
        union_choices=union_choices,
        next_url=url_for("web.conflicts", **{**request.args.to_dict(), "after": items[-1].id})  # type: ignore[arg-type]
        if more
        else None,
    )


@bp.route("/conflicts/<conflict_id>", methods=["GET", "POST"])
@page("conflicts.view")
def conflict(conflict_id: str) -> Any:
    try:
        found = staff_api.visible_conflict(g.staff, conflict_id)
    except HubError:
        abort(404)
    form = ResolveForm()
    errors: list[str] = []
    if request.method == "POST":
        if not g.staff.can("conflicts.resolve"):
            set_outcome("forbidden")
            abort(403)
        if form.validate_on_submit():
            try:
                value = None
                if form.choice.data == "value":
                    value = parse_value(form.value.data or "", [found.hub_value, found.incoming_value])
                staff_api.resolve_conflict(
                    g.staff, conflict_id, form.choice.data, value, form.note.data or "", form.choice.data == "value"
                )
            except ValueError as exc:
                errors.append(str(exc))
            except (HubError, SyncProtocolError) as exc:
                details = getattr(exc, "errors", None) or getattr(exc, "details", {}).get("errors") or {}
                if details:
                    errors.extend(m for msgs in dict(details).values() for m in msgs)
                else:
                    errors.append(exc.message)
            else:
                flash(_("Conflict resolved. Offices in this union receive the decision at their next sync."))
                return redirect(url_for("web.conflicts"))
        else:
            set_outcome("invalid_form")
            errors.extend(m for msgs in form.errors.values() for m in msgs)
    division, district, upazila, union = geo.union_path(found.scope)
    record = hub().store.get_record(found.entity, found.entity_id)
    values = record.values() if record is not None else {}
    summary = [(name, values[name]) for name in SUMMARY_FIELDS.get(found.entity, ()) if values.get(name) is not None]
    return render_template(
        "conflict.html",
        c=found,
        form=form,
        errors=errors,
        show=show,
        node_label=hub().store.node_labels([found.node_id]).get(found.node_id, found.node_id),
        place=(division, district, upazila, union),
        can_resolve=g.staff.can("conflicts.resolve"),
        summary=summary,
    ), (400 if errors else 200)


@bp.get("/access-log")
@page("log.view")
def access_log() -> Any:
    before = request.args.get("before", type=int)
    actor = (request.args.get("actor") or "").strip() or None
    rows = hub().store.access_page(before_id=before, actor=actor, limit=101)
    return render_template("access_log.html", rows=rows[:100], more=len(rows) > 100, actor=actor or "")


def init_app(app: Flask) -> None:
    @app.context_processor
    def _staff() -> dict[str, Any]:
        staff = getattr(g, "staff", None)
        return {"staff": staff, "logout_form": LogoutForm() if staff is not None else None, "label": label}

    @app.errorhandler(403)
    def _forbidden(_exc: Any) -> Any:
        if request.path.startswith(("/api/", "/sync/")):
            return {"error": {"code": "forbidden", "message": "forbidden"}}, 403
        return render_template("error.html", message=_("You do not have access to this page.")), 403

    app.register_blueprint(bp)
