"""Review of possible duplicates by hub staff: pages (``/registry/review``, a pair side by side, a cluster)
and their JSON twins under ``/api/v1/registry``. Reviewers and admins only, limited to the unions in their
scope (a pair is in scope when either record is). Every decision goes through
``RegistryService.decide``: audited (who, when, what, note) and published as hub writes in one
transaction, so the offices concerned receive the new registry ids by pull.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from central_hub import staff_api, web
from central_hub.access import set_outcome
from central_hub.app import hub
from central_hub.errors import ForbiddenError, HubError, InvalidRequestError, NotFoundError
from central_hub.nid_dashboard import union_label_bn
from central_hub.registry.matcher import Edge
from central_hub.registry.service import DecisionError, registry_service
from sync_protocol.model import RecordState

REVIEW_ROLES = frozenset({"reviewer", "admin"})
#: what a reviewer compares, in this order
COMPARED = ("full_name_bn", "full_name_en", "sex", "date_of_birth", "nid", "brn", "father_name", "mother_name",
            "spouse_name", "mobile")  # fmt: skip

bp = Blueprint("registry_review", __name__)
api = Blueprint("registry_api", __name__, url_prefix="/api/v1/registry")


class DecisionForm(FlaskForm):
    decision = RadioField(
        _l("Decision"),
        choices=[
            ("same", _l("Same person")),
            ("different", _l("Different people")),
            ("unmerge", _l("Take the second record out of its group")),
        ],
        validators=[DataRequired()],
    )
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


def _reviewer() -> None:
    if g.staff.role not in REVIEW_ROLES:
        set_outcome("forbidden")
        raise ForbiddenError(f"role {g.staff.role} may not review duplicates")


def _records(ids: set[str]) -> dict[str, RecordState]:
    found = hub().store.load_records([("person", i) for i in sorted(ids)])
    return {k[1]: v for k, v in found.items()}


def _in_scope(records: dict[str, RecordState]) -> bool:
    unions = g.staff.unions
    return unions is None or any(r.scope in unions for r in records.values())


def person_item(pid: str, rec: RecordState | None) -> dict[str, Any]:
    values = rec.values() if rec is not None else {}
    return {"id": pid, "union_id": rec.scope if rec else None,
            "union_name": staff_api.union_label(rec.scope) if rec else None,
            "union_name_bn": union_label_bn(rec.scope) if rec else None,
            "registry_id": values.get("registry_id"), **{k: values.get(k) for k in COMPARED}}  # fmt: skip


def pair_item(edge: Edge, records: dict[str, RecordState]) -> dict[str, Any]:
    a, b = person_item(edge.a, records.get(edge.a)), person_item(edge.b, records.get(edge.b))
    differs = [k for k in COMPARED if (a[k] or None) != (b[k] or None)]
    status = "open" if edge.active and not edge.confirmed_by else "same" if edge.active else "removed"
    return {"id": edge.seq, "a": a, "b": b, "score": edge.score, "band": edge.band, "status": status,
            "decided_by": edge.confirmed_by if status == "same" else None,
            "model_version": edge.model_version, "evidence": edge.evidence, "differs": differs}  # fmt: skip


def queue(limit: int = 50) -> list[dict[str, Any]]:
    """Open review pairs in the staff member's scope, highest review weight first."""
    # the scope is applied in SQL: a union's reviewer must not page through the nation's queue
    edges = registry_service().index.review_edges(limit=limit, unions=g.staff.unions)
    records = _records({x for e in edges for x in (e.a, e.b)})
    return [pair_item(e, {k: v for k, v in records.items() if k in (e.a, e.b)}) for e in edges]


def visible_pair(pair_id: str | int) -> tuple[Edge, dict[str, RecordState]]:
    seq = str(pair_id)
    if not (seq.isascii() and seq.isdigit()) or len(seq) > 18:
        raise NotFoundError(f"no review pair {seq}")
    edge = registry_service().index.edge(int(seq))
    if edge is None:
        raise NotFoundError(f"no review pair {seq}")
    records = _records({edge.a, edge.b})
    if not _in_scope(records):
        raise NotFoundError(f"no review pair {seq}")  # outside the scope looks like nothing at all
    return edge, records


def cluster_item(pid: str) -> dict[str, Any]:
    service = registry_service()
    if service.index.get(pid) is None:
        raise NotFoundError(f"no person {pid} in the registry")
    members = service.index.component(pid)
    records = _records(members)
    if not _in_scope(records):
        raise NotFoundError(f"no person {pid} in the registry")
    return {"registry_id": min(members), "persons": [person_item(m, records.get(m)) for m in sorted(members)]}


def decide(data: dict[str, Any]) -> dict[str, Any]:
    a, b, decision, note = data.get("a"), data.get("b"), data.get("decision"), data.get("note") or ""
    records = _records({str(a), str(b)})
    if not _in_scope(records):
        raise NotFoundError("no such persons in your area")
    try:
        ids = registry_service().decide(str(a or ""), str(b or ""), str(decision or ""), g.staff.username, note)
    except DecisionError as exc:
        raise InvalidRequestError(str(exc), exc.errors) from exc
    return {"decision": decision, "a": a, "b": b, "registry_ids": ids}


# ---- pages -------------------------------------------------------------------------------------------------


@bp.get("/registry/review")
@web.page("persons.view")
def review_queue() -> Any:
    _page_reviewer()
    return render_template("registry_queue.html", items=queue(), label=web.label, show=web.show)


@bp.route("/registry/review/<seq>", methods=["GET", "POST"])
@web.page("persons.view")
def review_pair(seq: str) -> Any:
    _page_reviewer()
    try:
        edge, records = visible_pair(seq)
    except HubError:
        abort(404)
    form = DecisionForm()
    errors: list[str] = []
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                result = decide({"a": edge.a, "b": edge.b, "decision": form.decision.data, "note": form.note.data})
            except HubError as exc:
                details = getattr(exc, "errors", None) or {"": [exc.message]}
                errors.extend(m for msgs in details.values() for m in msgs)
            else:
                flash(_("Decision saved. Offices receive the new registry ids at their next sync."))
                return redirect(url_for("registry_review.cluster", person_id=result["registry_ids"][edge.a]))
        else:
            set_outcome("invalid_form")
            errors.extend(m for msgs in form.errors.values() for m in msgs)
    item = pair_item(edge, records)
    index = registry_service().index
    others = (index.component(edge.a) | index.component(edge.b)) - {edge.a, edge.b}
    other_records = _records(others)
    linked = [person_item(o, other_records.get(o)) for o in sorted(others)]
    return render_template("registry_pair.html", p=item, edge=edge, form=form, errors=errors, fields=COMPARED,
                           linked=linked, label=web.label, show=web.show), (400 if errors else 200)  # fmt: skip


@bp.get("/registry/clusters/<person_id>")
@web.page("persons.view")
def cluster(person_id: str) -> Any:
    _page_reviewer()
    try:
        item = cluster_item(person_id)
    except HubError:
        abort(404)
    return render_template("registry_cluster.html", c=item, fields=COMPARED, label=web.label, show=web.show)


def _page_reviewer() -> None:
    if g.staff.role not in REVIEW_ROLES:
        set_outcome("forbidden")
        abort(403)


# ---- JSON ----------------------------------------------------------------------------------------------------


@api.get("/review")
@staff_api.requires("persons.view")
def api_queue() -> Response:
    _reviewer()
    limit = request.args.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 500:
        raise InvalidRequestError("bad limit", {"limit": ["a whole number from 1 to 500"]})
    return jsonify({"items": queue(int(limit))})


@api.get("/review/<seq>")
@staff_api.requires("persons.view")
def api_pair(seq: str) -> Response:
    _reviewer()
    edge, records = visible_pair(seq)
    return jsonify(pair_item(edge, records))


@api.post("/decisions")
@staff_api.requires("persons.view")
def api_decide() -> Response:
    _reviewer()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequestError("send a JSON object", {"body": ["expected a JSON object"]})
    return jsonify(decide(data))


@api.get("/persons/<person_id>")
@staff_api.requires("persons.view")
def api_cluster(person_id: str) -> Response:
    _reviewer()
    return jsonify(cluster_item(person_id))


@api.errorhandler(HubError)
def _hub_error(exc: HubError) -> Any:
    return staff_api._hub_error(exc)


def init_app(app: Flask, csrf: Any) -> None:
    app.register_blueprint(bp)
    csrf.exempt(api)  # bearer-token API, like the other staff JSON endpoints
    app.register_blueprint(api)
