"""Building blocks shared by the OpenAPI documents of the hub's APIs (``openapi.py`` and the registry's
``registry/openapi_doc.py``)."""

from __future__ import annotations

from typing import Any

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def err(description: str) -> dict[str, Any]:
    """A response whose body is the hub's JSON error."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def ok(description: str, ref: str) -> dict[str, Any]:
    """A JSON response described by component schema ``ref``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }
