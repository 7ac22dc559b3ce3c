"""The NID verification dashboard for staff: a web page (``/nid``) and its JSON twin (``GET /api/v1/nid``).

Counts by state and by union, recent failures (mismatch, not found, errors) and the health of the EC
service (circuit breaker, last verdict, last failure). Staff who may read persons (``persons.view``) see
it, limited to the unions in their scope.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g, jsonify, render_template
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from sync_protocol import geo

from . import staff_api, web
from .errors import HubError
from .nid.service import nid_service
from .nid.store import Status
from .nid.worker import hub_fields

bp = Blueprint("nid", __name__)
api = Blueprint("nid_api", __name__, url_prefix="/api/v1")

#: states in the order staff read them, with the glossary words
STATE_LABELS: dict[str, Any] = {
    "verified": _l("Verified"),
    "mismatch": _l("Mismatch"),
    "not_found": _l("Not found"),
    "pending": _l("Pending"),
    "error": _l("Error"),
    "retrying": _l("Error, retrying"),
}
CIRCUIT_LABELS: dict[str, Any] = {
    "closed": _l("Working"),
    "open": _l("Paused after repeated failures"),
    "half_open": _l("Testing whether the service is back"),
}
FAILURES = (Status.MISMATCH, Status.NOT_FOUND, Status.ERROR)


def union_label_bn(union_id: str) -> str:
    try:
        _div, _dist, upazila, union = geo.union_path(union_id)
    except KeyError:
        return union_id
    return f"{union.name_bn}, {upazila.name_bn}"


def dashboard_data(unions: frozenset[str] | None) -> dict[str, Any]:
    service = nid_service()
    by_union = service.store.counts_by_union(unions)
    if unions is None:
        totals = service.store.counts()
    else:
        totals = {s.value: sum(c[s.value] for c in by_union.values()) for s in Status}
    recent = [
        {
            "person_id": state.person_id,
            "union_id": union_id,
            "union": staff_api.union_label(union_id),
            "union_bn": union_label_bn(union_id),
            **hub_fields(state),
            "status": state.status.value,
            "retrying": state.retrying,
            "attempts": state.attempts,
            "error": state.error,
        }
        for state, union_id in service.store.recent(FAILURES, unions, limit=20)
    ]
    return {
        "counts": totals,
        "by_union": [
            {"union_id": uid, "union": staff_api.union_label(uid), "union_bn": union_label_bn(uid), "counts": counts}
            for uid, counts in sorted(by_union.items())
        ],
        "recent_failures": recent,
        "service": service.health(),
    }


@bp.get("/nid")
@web.page("persons.view")
def dashboard() -> Any:
    data = dashboard_data(g.staff.unions)
    return render_template(
        "nid_dashboard.html", d=data, states=STATE_LABELS, circuits=CIRCUIT_LABELS, field_label=web.label
    )


@api.get("/nid")
@staff_api.requires("persons.view")
def status() -> Response:
    return jsonify(dashboard_data(g.staff.unions))


@api.errorhandler(HubError)
def _hub_error(exc: HubError) -> Any:
    return staff_api._hub_error(exc)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api)
