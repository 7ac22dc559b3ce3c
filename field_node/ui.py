"""Operator screens (Jinja, Bangla/English). Every write goes through ``services.Registry``, the same
code the JSON API uses, so the UI and the API cannot drift apart."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from sync_protocol import geo
from sync_protocol import validation as v

from .errors import (
    LoginError,
    LoginThrottledError,
    NotFoundError,
    PossibleDuplicateError,
    SyncFailedError,
    ValidationFailed,
)
from .i18n import LANGUAGES, current_lang

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/static/node")

PERSON_FIELDS = (
    "full_name_bn",
    "full_name_en",
    "sex",
    "date_of_birth",
    "dob_estimated",
    "nid",
    "brn",
    "mobile",
    "relation_to_head",
    "marital_status",
    "father_name",
    "mother_name",
    "spouse_name",
    "occupation",
    "disability",
)
HOUSEHOLD_FIELDS = ("ward", "village", "address", "house_type", "land_decimals", "monthly_income_bdt")
MAX_MEMBERS = 20


def _state() -> Any:
    from .app import state

    return state()


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not session.get("operator") or _state().node.locked:
            return redirect(url_for("ui.login", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def _form_values(prefix: str, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        key = f"{prefix}{name}"
        if name in ("dob_estimated", "disability"):
            out[name] = key in request.form
        elif key in request.form:
            out[name] = request.form[key]
    return out


def _blank(values: dict[str, Any]) -> bool:
    return not any(val for k, val in values.items() if k not in ("dob_estimated", "disability"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username:
            errors["username"] = [v.translate(v.MSG_REQUIRED, current_lang())]
        if not password:
            errors["password"] = [v.translate(v.MSG_REQUIRED, current_lang())]
        if not errors:
            try:
                operator = _state().node.login(username, password)
            except LoginThrottledError as exc:
                errors["password"] = [
                    _("Too many failed logins; try again in %(s)s seconds", s=int(exc.retry_after) + 1)
                ]
            except LoginError:
                errors["password"] = [_("Wrong operator name or password")]
            else:
                lang = session.get("lang")
                session.clear()
                if lang:
                    session["lang"] = lang
                session["operator"] = operator
                nxt = request.args.get("next") or ""
                return redirect(nxt if nxt.startswith("/") and not nxt.startswith("//") else url_for("ui.home"))
    return render_template("login.html", errors=errors, form=request.form), (400 if errors else 200)


@bp.post("/logout")
def logout() -> Response:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("ui.login"))


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    if code in LANGUAGES:
        session["lang"] = code
    back = request.args.get("next") or "/"
    return redirect(back if back.startswith("/") and not back.startswith("//") else "/")


@bp.get("/")
@login_required
def home() -> str:
    st = _state()
    status = st.registry.sync_status()
    from .agent import agent_of

    snap = agent_of(current_app).snapshot()
    agent_error = snap.get("last_error")
    if agent_error and (status.get("last_sync_at") or "") <= (snap.get("last_attempt_at") or ""):
        # The agent's failure is the latest news: its plain words in the operator's language.
        status["last_error"] = agent_error["bn" if current_lang() == "bn" else "en"]
    division, district, upazila, union = geo.union_path(st.node.union_id)
    return render_template("home.html", status=status, place=(division, district, upazila, union))


@bp.post("/sync")
@login_required
def sync_now() -> Response:
    from .agent import agent_of, error_text

    try:
        summary = agent_of(current_app).sync_now()["last_summary"]
    except SyncFailedError as exc:
        flash(_("Sync failed: %(msg)s", msg=error_text(exc, current_lang())), "error")
    else:
        flash(
            _("Sync finished: %(sent)s sent, %(got)s received", sent=summary["changes_acked"], got=summary["pulled"]),
            "ok",
        )
    return redirect(url_for("ui.home"))


@bp.route("/households/new", methods=["GET", "POST"])
@login_required
def household_new() -> Any:
    st = _state()
    count = 2
    errors: dict[str, list[str]] = {}
    duplicates: dict[str, list[dict[str, Any]]] = {}
    if request.method == "POST":
        count = max(1, min(int(request.form.get("member_count", "2") or 2), MAX_MEMBERS))
        if "add_member" in request.form:
            count = min(count + 1, MAX_MEMBERS)
        else:
            household = _form_values("hh-", HOUSEHOLD_FIELDS)
            members = [_form_values(f"m-{i}-", PERSON_FIELDS) for i in range(count)]
            members = [m for m in members if not _blank(m)]
            if not members:
                errors["m-0-full_name_bn"] = [_("Add at least one member")]
            else:
                try:
                    created = st.registry.create_household(
                        household,
                        members,
                        actor=session["operator"],
                        lang=current_lang(),
                        confirm_duplicates="confirm_duplicates" in request.form,
                    )
                except ValidationFailed as exc:
                    errors = {_form_key(k): msgs for k, msgs in exc.errors.items()}
                except PossibleDuplicateError as exc:
                    duplicates = exc.matches
                else:
                    flash(_("Saved successfully"), "ok")
                    return redirect(url_for("ui.household_view", hh_id=created["id"]))
    status = 422 if errors else (409 if duplicates else 200)
    return (
        render_template(
            "household_form.html",
            count=count,
            errors=errors,
            form=request.form,
            duplicates=duplicates,
            person_fields=PERSON_FIELDS,
        ),
        status,
    )


def _form_key(key: str) -> str:
    if key.startswith("members."):
        _, idx, name = key.split(".", 2)
        return f"m-{idx}-{name}"
    return f"hh-{key}"


@bp.get("/households/<hh_id>")
@login_required
def household_view(hh_id: str) -> str:
    try:
        household = _state().registry.get_household(hh_id)
    except NotFoundError:
        return render_template("not_found.html"), 404  # type: ignore[return-value]
    return render_template("household.html", household=household)


@bp.get("/persons")
@login_required
def search() -> str:
    q = request.args.get("q", "").strip()
    results = _state().registry.search_persons(q, limit=50) if q else []
    return render_template("search.html", q=q, results=results)


@bp.get("/persons/needing-correction")
@login_required
def persons_needing_correction() -> str:
    return render_template("nid_corrections.html", persons=_state().registry.persons_needing_correction())


@bp.route("/persons/<pid>", methods=["GET", "POST"])
@login_required
def person_view(pid: str) -> Any:
    reg = _state().registry
    errors: dict[str, list[str]] = {}
    try:
        person = reg.get_person(pid)
    except NotFoundError:
        return render_template("not_found.html"), 404
    form: Any = {}
    if request.method == "POST":
        action = request.form.get("action", "edit")
        try:
            if action == "edit":
                reg.update_person(
                    pid, _form_values("p-", PERSON_FIELDS), actor=session["operator"], lang=current_lang()
                )
            elif action == "deceased":
                reg.update_person(
                    pid,
                    {"life_status": "deceased", "date_of_death": request.form.get("date_of_death", "")},
                    actor=session["operator"],
                    lang=current_lang(),
                )
            elif action == "migrated":
                reg.update_person(pid, {"life_status": "migrated"}, actor=session["operator"], lang=current_lang())
            elif action == "alive":
                reg.update_person(
                    pid, {"life_status": "alive", "date_of_death": None}, actor=session["operator"], lang=current_lang()
                )
            elif action == "enrol":
                reg.create_enrolment(
                    {
                        "person_id": pid,
                        "programme": request.form.get("programme", ""),
                        "payment_channel": request.form.get("payment_channel", ""),
                        "account_number": request.form.get("account_number", ""),
                        "benefit_amount_bdt": request.form.get("benefit_amount_bdt", ""),
                    },
                    actor=session["operator"],
                    lang=current_lang(),
                )
        except ValidationFailed as exc:
            prefix = "p-" if action == "edit" else ("e-" if action == "enrol" else "l-")
            errors = {prefix + k: msgs for k, msgs in exc.errors.items()}
            form = request.form
        else:
            flash(_("Saved successfully"), "ok")
            return redirect(url_for("ui.person_view", pid=pid))
    if form and request.form.get("action") == "edit":
        pv = {n: form.get(f"p-{n}", "") for n in PERSON_FIELDS}
    else:
        pv = {n: ("" if person.get(n) is None else person[n]) for n in PERSON_FIELDS}
    return (
        render_template(
            "person.html",
            person=person,
            pv=pv,
            enrolments=reg.person_enrolments(pid),
            errors=errors,
            form=form,
            person_fields=PERSON_FIELDS,
            programmes=v.programmes(),
        ),
        422 if errors else 200,
    )


@bp.post("/enrolments/<eid>/status")
@login_required
def enrolment_status(eid: str) -> Response:
    reg = _state().registry
    try:
        enrolment = reg.update_enrolment(
            eid, {"status": request.form.get("status", "")}, actor=session["operator"], lang=current_lang()
        )
    except (ValidationFailed, NotFoundError):
        flash(_("Could not change the status"), "error")
        return redirect(request.referrer or url_for("ui.home"))
    flash(_("Saved successfully"), "ok")
    return redirect(url_for("ui.person_view", pid=enrolment["person_id"]))


@bp.get("/grievances")
@login_required
def grievances() -> str:
    items, nxt = _state().registry.list("grievance", after=request.args.get("cursor"), limit=50)
    return render_template("grievances.html", items=items, next=nxt)


@bp.route("/grievances/new", methods=["GET", "POST"])
@login_required
def grievance_new() -> Any:
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        data = {
            k: request.form.get(k, "")
            for k in (
                "complainant_person_id",
                "complainant_name",
                "complainant_mobile",
                "programme",
                "category",
                "description",
            )
        }
        try:
            created = _state().registry.create_grievance(data, actor=session["operator"], lang=current_lang())
        except ValidationFailed as exc:
            errors = {"g-" + k: msgs for k, msgs in exc.errors.items()}
        else:
            flash(_("Saved successfully"), "ok")
            return redirect(url_for("ui.grievance_view", gid=created["id"]))
    form = request.form if request.method == "POST" else {"complainant_person_id": request.args.get("person", "")}
    return render_template("grievance_new.html", errors=errors, form=form, programmes=v.programmes()), (
        422 if errors else 200
    )


@bp.route("/grievances/<gid>", methods=["GET", "POST"])
@login_required
def grievance_view(gid: str) -> Any:
    reg = _state().registry
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        data = {k: request.form.get(k, "") for k in ("type", "note", "tier")}
        try:
            reg.add_grievance_event(gid, data, actor=session["operator"], lang=current_lang())
        except ValidationFailed as exc:
            errors = {"ev-" + k: msgs for k, msgs in exc.errors.items()}
        except NotFoundError:
            return render_template("not_found.html"), 404
        else:
            flash(_("Saved successfully"), "ok")
            return redirect(url_for("ui.grievance_view", gid=gid))
    try:
        grievance = reg.get_grievance(gid)
    except NotFoundError:
        return render_template("not_found.html"), 404
    return render_template("grievance.html", g=grievance, errors=errors, form=request.form), (422 if errors else 200)


@bp.get("/about")
@login_required
def about() -> str:
    st = _state()
    return render_template(
        "about.html", node=st.node, place=geo.union_path(st.node.union_id), status=st.registry.sync_status()
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
