"""The registry review API's part of the hub's OpenAPI document (merged in by ``central_hub.openapi``)."""

from __future__ import annotations

from typing import Any

from central_hub.openapi_parts import BEARER
from central_hub.openapi_parts import err as _err
from central_hub.openapi_parts import ok as _ok

_COMMON = {"401": _err("not logged in"), "403": _err("only reviewers and admins review duplicates")}

PATHS: dict[str, Any] = {
    "/api/v1/registry/review": {
        "get": {
            "summary": "Open review pairs (possible duplicates) in the caller's scope, highest review weight first",
            "security": BEARER,
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                }
            ],
            "responses": {"200": _ok("the queue", "ReviewQueue"), "400": _err("bad limit"), **_COMMON},
        }
    },
    "/api/v1/registry/review/{pair_id}": {
        "get": {
            "summary": "One review pair: both records side by side, the fields that differ, the evidence",
            "security": BEARER,
            "parameters": [
                {"name": "pair_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
            ],
            "responses": {"200": _ok("the pair", "ReviewPair"), "404": _err("no such pair in scope"), **_COMMON},
        }
    },
    "/api/v1/registry/decisions": {
        "post": {
            "summary": "Decide on two records: same person, different people, or take b out of its cluster",
            "description": "Audited (who, when, note) and published: new registry ids reach offices by pull.",
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Decision"}}},
            },
            "responses": {
                "200": _ok("registry ids after the decision", "DecisionResult"),
                "400": _err("invalid decision (field errors)"),
                "404": _err("persons not in scope"),
                **_COMMON,
            },
        }
    },
    "/api/v1/registry/persons/{person_id}": {
        "get": {
            "summary": "The registry identity (cluster) of a person: registry id and every linked record",
            "security": BEARER,
            "parameters": [{"name": "person_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _ok("the cluster", "RegistryCluster"),
                "404": _err("not found or outside scope"),
                **_COMMON,
            },
        }
    },
}

_PERSON = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "union_id": {"type": "string", "nullable": True},
        "registry_id": {"type": "string", "nullable": True},
    },
    "additionalProperties": True,
}
_PAIR = {
    "type": "object",
    "required": ["id", "a", "b", "score", "band", "differs"],
    "properties": {
        "id": {"type": "integer"},
        "a": _PERSON,
        "b": _PERSON,
        "score": {"type": "number"},
        "band": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "same", "removed"]},
        "model_version": {"type": "string"},
        "evidence": {"type": "object"},
        "differs": {"type": "array", "items": {"type": "string"}},
    },
}

SCHEMAS: dict[str, Any] = {
    "ReviewPair": _PAIR,
    "ReviewQueue": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _PAIR}},
    },
    "Decision": {
        "type": "object",
        "required": ["a", "b", "decision"],
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string"},
            "decision": {"type": "string", "enum": ["same", "different", "unmerge"]},
            "note": {"type": "string", "maxLength": 2000},
        },
    },
    "DecisionResult": {
        "type": "object",
        "required": ["registry_ids"],
        "properties": {"registry_ids": {"type": "object", "additionalProperties": {"type": "string"}}},
        "additionalProperties": True,
    },
    "RegistryCluster": {
        "type": "object",
        "required": ["registry_id", "persons"],
        "properties": {"registry_id": {"type": "string"}, "persons": {"type": "array", "items": _PERSON}},
    },
}
