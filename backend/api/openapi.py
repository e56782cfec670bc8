"""The OpenAPI 3.0 description of every endpoint, served at ``GET /openapi.json``.

Maintained by hand next to the routes: ``tests/backend/test_openapi_fuzz.py`` fails when a Flask route (path and
method) is missing here, and fuzzes every operation described here with schemathesis. When you add a route,
add its operation with ``_operation(...)`` below (request schema, the statuses it answers, its security).
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask, Response, jsonify

from backend import __version__

JSON = "application/json"
Schema = dict[str, Any]

LABEL_STUDIO_SECURITY: list[dict[str, list[str]]] = [{"basicAuth": []}, {"bearerAuth": []}]
"""Enforced only when ``TAGLOOP_BASIC_AUTH_USER``/``_PASSWORD`` are set (Bearer = ``TAGLOOP_API_KEY``)."""
API_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
"""Enforced only when ``TAGLOOP_API_KEY`` is set."""
OPEN: list[dict[str, list[str]]] = []

ERROR: Schema = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
}
PROJECT_REF: Schema = {
    "description": "Label Studio project id: an integer, '<id>.<created unix time>' or a project object.",
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "example": "12.1700000000"},
        {"type": "object", "properties": {"id": {"type": "integer"}}},
    ],
}
TASK: Schema = {
    "type": "object",
    "required": ["data"],
    "properties": {"id": {"type": "integer"}, "data": {"type": "object", "example": {"text": "Stocks rally."}}},
}
CHOICES_RESULT: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "from_name": {"type": "string"},
            "to_name": {"type": "string"},
            "type": {"type": "string"},
            "value": {"type": "object", "properties": {"choices": {"type": "array", "items": {"type": "string"}}}},
        },
    },
}
PREDICTION: Schema = {
    "type": "object",
    "properties": {"model_version": {"type": "string"}, "score": {"type": "number"}, "result": CHOICES_RESULT},
}
JOB_STATUS: Schema = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["queued", "already_queued"]}, "tier": {"type": "string"}},
}
STRATEGY: Schema = {
    "type": "object",
    "required": ["project", "strategy", "available"],
    "properties": {
        "project": {"type": "integer"},
        "strategy": {"type": "string"},
        "project_setting": {"type": "string", "nullable": True},
        "available": {"type": "array", "items": {"type": "string"}},
    },
}
PROJECT_ID_PARAM: Schema = {
    "name": "project_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
    "example": 1,
}
NEWS_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="topic" toName="text">'
    '<Choice value="World"/><Choice value="Sports"/><Choice value="Business"/><Choice value="Sci/Tech"/>'
    "</Choices></View>"
)
STATUS_TEXT = {
    "200": "OK",
    "201": "Created",
    "202": "Accepted",
    "400": "Malformed request",
    "401": "Missing or wrong credentials (when authentication is configured)",
    "403": "Authentication required but not configured on the server",
    "404": "Unknown project",
    "405": "Method not allowed",
    "409": "Conflicts with an earlier request (an idempotency key reused with other content)",
    "413": "Body larger than TAGLOOP_MAX_BODY_BYTES",
    "422": "Well-formed but not servable as asked",
}


def _json(schema: Schema) -> Schema:
    return {"content": {JSON: {"schema": schema}}}


def _operation(
    summary: str,
    ok: dict[str, Schema],
    *,
    errors: tuple[str, ...] = (),
    body: Schema | None = None,
    security: list[dict[str, list[str]]] | None = None,
    parameters: list[Schema] | None = None,
) -> Schema:
    """One operation: ``ok`` maps success statuses to response schemas; ``errors`` are JSON error statuses."""
    op: Schema = {"summary": summary, "responses": {}}
    for code, schema in ok.items():
        op["responses"][code] = {"description": STATUS_TEXT[code], **_json(schema)}
    for code in errors:
        op["responses"][code] = {"description": STATUS_TEXT[code], **_json(ERROR)}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if security is not None:
        op["security"] = security
    if parameters:
        op["parameters"] = parameters
    return op


def _labelstudio_paths() -> dict[str, Schema]:
    ls_errors = ("400", "401", "413", "422")
    setup_body = {
        "type": "object",
        "required": ["project", "schema"],
        "properties": {
            "project": PROJECT_REF,
            "schema": {"type": "string", "example": NEWS_CONFIG},
            "hostname": {"type": "string"},
            "access_token": {"type": "string"},
            "extra_params": {"nullable": True},
        },
        "example": {"project": "1.1700000000", "schema": NEWS_CONFIG},
    }
    predict_body = {
        "type": "object",
        "required": ["tasks"],
        "properties": {
            "tasks": {"type": "array", "items": TASK},
            "project": PROJECT_REF,
            "label_config": {"type": "string"},
            "params": {"type": "object"},
        },
        "example": {"project": "1.1700000000", "tasks": [{"id": 1, "data": {"text": "Stocks rally."}}]},
    }
    webhook_body = {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {
                "type": "string",
                "example": "ANNOTATION_CREATED",
                "description": "ANNOTATION_CREATED, ANNOTATION_UPDATED, ANNOTATIONS_DELETED, TASKS_CREATED, "
                "START_TRAINING; other events are acknowledged and ignored.",
            },
            "project": PROJECT_REF,
            "annotation": {"type": "object", "properties": {"id": {"type": "integer"}, "result": CHOICES_RESULT}},
            "task": TASK,
            "annotations": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}}}},
            "tasks": {"type": "array", "items": TASK},
        },
    }
    event_answer = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    return {
        "/health": {
            "get": _operation(
                "Liveness for Label Studio (no model work; never authenticated)",
                {"200": {"type": "object", "properties": {"status": {"type": "string"}}}},
                security=OPEN,
            )
        },
        "/setup": {
            "post": _operation(
                "Register a project's labeling config and Label Studio address",
                {
                    "200": {
                        "type": "object",
                        "required": ["model_version"],
                        "properties": {"model_version": {"type": "string"}},
                    }
                },
                errors=ls_errors,
                body=setup_body,
                security=LABEL_STUDIO_SECURITY,
            )
        },
        "/predict": {
            "post": _operation(
                "Pre-annotations for the given tasks, one per task, in request order",
                {
                    "200": {
                        "type": "object",
                        "required": ["results", "model_version"],
                        "properties": {
                            "results": {"type": "array", "items": PREDICTION},
                            "model_version": {"type": "string"},
                        },
                    }
                },
                errors=ls_errors,
                body=predict_body,
                security=LABEL_STUDIO_SECURITY,
            )
        },
        "/webhook": {
            "post": _operation(
                "Label Studio events: annotations are stored before the answer; training is only queued",
                {"200": event_answer, "201": event_answer},
                errors=ls_errors,
                body=webhook_body,
                security=LABEL_STUDIO_SECURITY,
            )
        },
    }


def _api_paths() -> dict[str, Schema]:
    params = [PROJECT_ID_PARAM]
    status = _operation(
        "Labels, served version and metrics, versions, jobs and the last error of a project",
        {"200": {"type": "object", "required": ["project", "model_version"]}},
        errors=("401", "404"),
        security=API_SECURITY,
        parameters=params,
    )
    tier = {"name": "tier", "in": "query", "required": False, "schema": {"type": "string", "example": "fast"}}
    rollback_body = {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}
    strategy_body = {"type": "object", "properties": {"strategy": {"type": "string", "nullable": True}}}
    return {
        "/api/projects/{project_id}": {"get": status},
        "/api/projects/{project_id}/status": {"get": status},
        "/api/projects/{project_id}/train": {
            "post": _operation(
                "Queue a training of the project (tier fast, setfit or transformer)",
                {"202": JOB_STATUS},
                errors=("401", "404", "422"),
                security=API_SECURITY,
                parameters=[PROJECT_ID_PARAM, tier],
            )
        },
        "/api/projects/{project_id}/rollback": {
            "post": _operation(
                "Serve a kept version again",
                {"200": {"type": "object", "required": ["project", "model_version"]}},
                errors=("400", "401", "404", "413", "422"),
                body=rollback_body,
                security=API_SECURITY,
                parameters=params,
            )
        },
        "/api/projects/{project_id}/queue": {
            "get": _operation(
                "Task ids pushed to Label Studio for the served version, in queue order",
                {"200": {"type": "object", "required": ["project", "tasks", "protected"]}},
                errors=("401", "404"),
                security=API_SECURITY,
                parameters=params,
            )
        },
        "/api/projects/{project_id}/strategy": {
            "get": _operation(
                "The project's query strategy and the registered names",
                {"200": STRATEGY},
                errors=("401", "404"),
                security=API_SECURITY,
                parameters=params,
            ),
            "put": _operation(
                "Set the project's query strategy (null: the default) and re-rank its queue",
                {"200": STRATEGY},
                errors=("400", "401", "404", "413", "422"),
                body=strategy_body,
                security=API_SECURITY,
                parameters=params,
            ),
        },
    }


def _review_paths() -> dict[str, Schema]:
    """Moderation review (``backend/api/review.py``)."""
    labels: Schema = {"type": "array", "items": {"type": "string"}, "example": ["Violating"]}
    feedback_body: Schema = {
        "type": "object",
        "required": ["project", "text", "external_id", "predicted", "correct"],
        "properties": {
            "project": PROJECT_REF,
            "text": {"type": "string", "example": "you people are all the same"},
            "external_id": {"oneOf": [{"type": "string"}, {"type": "integer"}], "example": "mod-123"},
            "predicted": labels,
            "correct": {**labels, "example": ["Safe"]},
            "reporter": {"type": "string"},
            "control": {"type": "string", "description": "<Choices> name; default: the moderation control"},
        },
    }
    item: Schema = {"type": "object", "required": ["status", "item"]}
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string", "example": example}}
        for name, example in (("queue", "false_positive"), ("order", "confident"), ("state", "open"), ("limit", "20"))
    ]
    return {
        "/api/feedback": {
            "post": _operation(
                "Report a misclassified production text (always needs the Bearer API key); idempotent on external_id",
                {"201": item, "200": item},
                errors=("400", "401", "403", "404", "409", "413", "422"),
                body=feedback_body,
                security=[{"bearerAuth": []}],
            )
        },
        "/api/projects/{project_id}/review": {
            "get": _operation(
                "Review queues with sizes and throughput, thresholds and PSI; ?queue= lists its items in order",
                {"200": {"type": "object", "required": ["project", "queues"]}},
                errors=("401", "404", "422"),
                security=API_SECURITY,
                parameters=[PROJECT_ID_PARAM, *query],
            )
        },
    }


def _operations_paths() -> dict[str, Schema]:
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "security": API_SECURITY,
                "responses": {
                    "200": {"description": "OK", **text},
                    "401": {"description": STATUS_TEXT["401"], **_json(ERROR)},
                },
            }
        },
        "/openapi.json": {
            "get": _operation(
                "This document", {"200": {"type": "object", "required": ["openapi", "paths"]}}, security=OPEN
            )
        },
    }


def document() -> Schema:
    """The OpenAPI 3.0.3 document (a fresh deep copy on every call: the constants above stay untouched)."""
    return copy.deepcopy(_document())


def _document() -> Schema:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tagloop",
            "version": __version__,
            "description": "Label Studio ML backend (SetFit pre-annotations, active learning). Every error is JSON "
            '{"error", "reason"}. Authentication applies only where it is configured: Basic (or the API key) on '
            "/setup, /predict and /webhook; Bearer TAGLOOP_API_KEY on every other path except /health and "
            "/openapi.json.",
        },
        "paths": {**_labelstudio_paths(), **_api_paths(), **_review_paths(), **_operations_paths()},
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            }
        },
    }


def init_app(app: Flask) -> None:
    """Serve the document at ``GET /openapi.json``."""

    @app.get("/openapi.json")
    def _openapi() -> Response:
        return jsonify(document())
