"""`GET /openapi.json`: the OpenAPI 3 document of the status API (tested against the running server
with schemathesis in tests/test_api_openapi.py)."""

from __future__ import annotations

from typing import Any

from core import states

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_COUNTS = {
    "type": "object",
    "required": list(states.ALL),
    "properties": {s: {"type": "integer", "minimum": 0} for s in states.ALL},
}
_NULL_STR = {"type": ["string", "null"]}
_NULL_INT = {"type": ["integer", "null"]}
_FILE = {
    "type": "object",
    "required": ["id", "service", "path", "state", "attempts", "rows_loaded", "rows_rejected"],
    "properties": {
        "id": {"type": "integer"},
        "service": {"type": "string"},
        "path": {"type": "string", "description": "relative to the data root it lies under"},
        "state": {"type": "string", "enum": list(states.ALL)},
        "attempts": {"type": "integer"},
        "error": _NULL_STR,
        "queued": _NULL_STR,
        "started": _NULL_STR,
        "completed": _NULL_STR,
        "rows_loaded": {"type": "integer"},
        "rows_rejected": {"type": "integer"},
        "progress": {"type": "number"},
        "duplicate_of": _NULL_INT,
        "version": {"type": "integer"},
        "rejects": {**_NULL_STR, "description": "where the rejected rows are kept, under STATE_DIR"},
    },
}
_SERVICE = {
    "type": "object",
    "required": ["name", "kind", "state", "running", "counts", "rows_loaded", "rows_rejected"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["files", "derived"]},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "state": {"type": "string"},
        "running": {
            "type": ["object", "null"],
            "properties": {
                "id": {"type": "integer"},
                "path": {"type": "string"},
                "percent": {"type": "number"},
                "bytes_done": _NULL_INT,
                "bytes_total": _NULL_INT,
                "eta_seconds": {"type": ["number", "null"]},
            },
        },
        "counts": _COUNTS,
        "rows_loaded": {"type": "integer"},
        "rows_rejected": {"type": "integer"},
        "last_completed": _NULL_STR,
        "last_error": _NULL_STR,
        "extra": {"type": "object", "description": "the service's own facts (status_extra)"},
        "last_run": {"type": "object", "description": "derived services: their last run"},
    },
}
_LEGACY = {
    "type": "object",
    "required": ["response"],
    "properties": {
        "response": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["name", "status", "task", "file", "startdate", "lastcompletedate", "tasksleft"],
                "properties": {
                    "name": {"type": "string"},
                    "status": {"type": "string"},
                    "task": {"type": "string"},
                    "file": {"type": "string"},
                    "startdate": {"type": "string"},
                    "lastcompletedate": {"type": "string"},
                    "tasksleft": {"type": "integer"},
                },
            },
        }
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


_UNAVAILABLE = _err("the tracking database does not answer (the message says why)")
_AUTH = {
    "401": _err("no or a wrong `Authorization: Bearer <API_TOKEN>`"),
    "403": _err("writes are disabled: no API_TOKEN is configured"),
}
_SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
_ID = {"name": "file_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}


def _get(summary: str, ok: dict[str, Any], *extra: tuple[str, dict[str, Any]], **more: Any) -> dict[str, Any]:
    responses = {"200": ok, **dict(extra)}
    return {"get": {"summary": summary, "responses": responses, **more}}


def document() -> dict[str, Any]:
    legacy = _json({"$ref": "#/components/schemas/Legacy"}, "the original's shape")
    obj = {"type": "object"}
    paths: dict[str, Any] = {
        "/": _get("Services (the original's shape)", legacy, ("503", _UNAVAILABLE)),
        "/status": _get("Services (the original's shape)", legacy, ("503", _UNAVAILABLE)),
        "/newdata": {
            "get": {
                "summary": "Queue a scan now (the original's endpoint)",
                "security": _SECURED,
                "responses": {"202": _json(obj, "the scan is queued"), **_AUTH},
            }
        },
        "/api/v1/services": _get(
            "Every service: state, running file with progress and ETA, counts, last completion and error",
            _json(
                {
                    "type": "object",
                    "required": ["services"],
                    "properties": {
                        "as_of": _NULL_STR,
                        "services": {"type": "array", "items": {"$ref": "#/components/schemas/Service"}},
                    },
                },
                "the services",
            ),
            ("503", _UNAVAILABLE),
        ),
        "/api/v1/summary": _get(
            "Counts by service and state, totals, the queue, recent failures, loaded over time",
            _json(
                {
                    "type": "object",
                    "required": ["services", "totals", "queue", "recent_failures", "history"],
                    "properties": {
                        "services": {"type": "object", "additionalProperties": {"type": "object"}},
                        "totals": {"type": "object"},
                        "queue": {"type": "object"},
                        "recent_failures": {"type": "array", "items": {"$ref": "#/components/schemas/File"}},
                        "history": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "the summary",
            ),
            ("503", _UNAVAILABLE),
        ),
        "/api/v1/files": _get(
            "Tracked files, newest first, a page at a time",
            _json(
                {
                    "type": "object",
                    "required": ["files", "next_cursor"],
                    "properties": {
                        "files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}},
                        "next_cursor": {**_NULL_STR, "description": "pass as `cursor` for the next page"},
                    },
                },
                "one page of files",
            ),
            ("400", _err("a bad state, limit or cursor")),
            ("503", _UNAVAILABLE),
            parameters=[
                {"name": "service", "in": "query", "schema": {"type": "string", "maxLength": 64}},
                {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(states.ALL)}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                },
                {
                    "name": "cursor",
                    "in": "query",
                    "schema": {"type": "string", "pattern": "^c[0-9a-z]{1,13}$"},
                },
            ],
        ),
        "/api/v1/files/{file_id}": _get(
            "One tracked file's record",
            _json({"$ref": "#/components/schemas/File"}, "the file"),
            ("404", _err("no such file")),
            ("503", _UNAVAILABLE),
            parameters=[_ID],
        ),
        "/api/v1/scan": {
            "post": {
                "summary": "Queue a scan now",
                "security": _SECURED,
                "responses": {"202": _json(obj, "the scan is queued"), **_AUTH},
            }
        },
        "/api/v1/files/{file_id}/retry": {
            "post": {
                "summary": "Queue a failed file again with fresh attempts",
                "security": _SECURED,
                "parameters": [_ID],
                "responses": {
                    "200": _json(obj, "queued again"),
                    **_AUTH,
                    "404": _err("no such file"),
                    "409": _err("the file is not failed"),
                    "503": _UNAVAILABLE,
                },
            }
        },
        "/healthz": _get("The daemon answers (problems listed, still 200)", _json(obj, "alive")),
        "/readyz": _get(
            "The tracking database and both stores answer",
            _json(obj, "ready"),
            ("503", _json(obj, "not ready: `checks` says which one does not answer")),
        ),
        "/metrics": _get(
            "Prometheus metrics",
            {"description": "text format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}},
        ),
        "/openapi.json": _get("This document", _json(obj, "OpenAPI 3")),
        "/ui": _get(
            "The status page",
            {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
            (
                "503",
                {"description": "HTML, saying the tracking database is away", "content": {"text/html": {}}},
            ),
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Optimus Ingestor status API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR, "File": _FILE, "Service": _SERVICE, "Legacy": _LEGACY},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
