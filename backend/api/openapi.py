"""``GET /openapi.json``: the OpenAPI 3.0 document, generated from the app's routes and the pydantic models.

Each view declares its operation next to its route with ``@operation(...)``: a summary, its success answers' models,
its body and query models and the error statuses it adds. The rest is derived: the path and its parameters from the
Flask rule, the security from ``backend.api.auth.surface`` (so the document says what the hook enforces), 401 where
credentials may be needed, 400 and 413 where there is a body, 404 where the path names a project. Schemas come from
``model_json_schema`` (JSON Schema 2020-12) turned into OpenAPI 3.0's dialect by ``openapi_schema``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

from backend import __version__
from backend.api.auth import surface
from backend.api.schemas import ErrorAnswer, OpenApiDocument

Schema = dict[str, Any]
V = TypeVar("V", bound=Callable[..., Any])
ATTRIBUTE = "__openapi__"
EXTENSION = "tagloop.openapi"
JSON = "application/json"
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "open": [],
    "labelstudio": [{"basicAuth": []}, {"bearerAuth": []}],
    "api": [{"bearerAuth": []}],
}
"""Per ``auth.surface``; enforced where configured (Basic: ``TAGLOOP_BASIC_AUTH_*``, Bearer: ``TAGLOOP_API_KEY``)."""
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Malformed request",
    401: "Missing or wrong credentials (when authentication is configured)",
    403: "Authentication required but not configured on the server",
    404: "Unknown project",
    409: "Conflicts with an earlier request (an idempotency key reused with other content)",
    413: "Body larger than the limit",
    422: "Well-formed but not servable as asked",
}
PATH_PARAMETER = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>[^<>]+)>")


@dataclass(frozen=True)
class Operation:
    """What a view declares about itself; ``ok`` maps a success status to its answer model (None: plain text)."""

    summary: str
    ok: Mapping[int, type[BaseModel] | None]
    body: type[BaseModel] | tuple[type[BaseModel], ...] | None = None
    """The request body's model, or its forms (any of them)."""
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()


def operation(
    summary: str,
    ok: Mapping[int, type[BaseModel] | None],
    *,
    body: type[BaseModel] | tuple[type[BaseModel], ...] | None = None,
    query: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[V], V]:
    """Declare a view's OpenAPI operation (put it under the route decorator)."""

    def declare(view: V) -> V:
        setattr(view, ATTRIBUTE, Operation(summary, ok, body, query, errors))
        return view

    return declare


EXTERNAL = {"metrics": Operation("Prometheus metrics (text exposition format)", {200: None})}
"""Operations of routes registered by modules that declare no models (by Flask endpoint)."""


def init_app(app: Flask) -> None:
    """Serve the document at ``GET /openapi.json`` (built at the first request, once the routes are all there)."""

    @app.get("/openapi.json")
    @operation("This document", {200: OpenApiDocument})
    def _openapi() -> Response:
        if EXTENSION not in current_app.extensions:
            current_app.extensions[EXTENSION] = document(current_app)
        return jsonify(current_app.extensions[EXTENSION])


def operations(app: Flask) -> list[tuple[Rule, str, Operation | None]]:
    """(rule, lower-case method, its declared operation or None) of every route of ``app``."""
    out = []
    for rule in app.url_map.iter_rules():
        declared = getattr(app.view_functions[rule.endpoint], ATTRIBUTE, None) or EXTERNAL.get(rule.endpoint)
        out += [(rule, m.lower(), declared) for m in sorted(rule.methods or ()) if m not in ("HEAD", "OPTIONS")]
    return out


def document(app: Flask) -> Schema:
    """The OpenAPI 3.0.3 document of ``app``'s declared routes."""
    declared = [(rule, method, op) for rule, method, op in operations(app) if op is not None]
    validation: JsonSchemaMode = "validation"
    serialization: JsonSchemaMode = "serialization"
    models = {(m, validation) for _, _, op in declared for m in (*_forms(op.body), op.query) if m is not None}
    models |= {(m, serialization) for _, _, op in declared for m in op.ok.values() if m is not None}
    models.add((ErrorAnswer, serialization))
    refs, definitions = models_json_schema(sorted(models, key=str), ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Schema]] = {}
    for rule, method, op in declared:
        path = PATH_PARAMETER.sub(r"{\g<name>}", rule.rule)
        paths.setdefault(path, {})[method] = _operation(rule, op, refs)
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
        "paths": paths,
        "components": {
            "schemas": openapi_schema(definitions.get("$defs", {})),
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _operation(rule: Rule, op: Operation, refs: Mapping[tuple[Any, JsonSchemaMode], Schema]) -> Schema:
    kind = surface(rule.rule)
    errors = set(op.errors) | ({401} if kind != "open" else set()) | ({400, 413} if op.body else set())
    errors |= {404} if "project_id" in rule.arguments else set()
    responses: Schema = {str(status): _answer(status, refs.get((m, "serialization"))) for status, m in op.ok.items()}
    error = {"$ref": "#/components/schemas/ErrorAnswer"}
    responses |= {str(s): {"description": STATUS_TEXT[s], "content": {JSON: {"schema": error}}} for s in sorted(errors)}
    out: Schema = {"summary": op.summary, "security": SECURITY[kind], "responses": responses}
    parameters = [_path_parameter(match) for match in PATH_PARAMETER.finditer(rule.rule)]
    parameters += _query_parameters(op.query) if op.query else []
    if parameters:
        out["parameters"] = parameters
    if op.body:
        forms = [refs[(m, "validation")] for m in _forms(op.body)]
        schema = forms[0] if len(forms) == 1 else {"anyOf": forms}
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    return out


def _forms(body: type[BaseModel] | tuple[type[BaseModel], ...] | None) -> tuple[type[BaseModel], ...]:
    return () if body is None else body if isinstance(body, tuple) else (body,)


def _answer(status: int, schema: Schema | None) -> Schema:
    if schema is None:
        return {"description": STATUS_TEXT[status], "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {"description": STATUS_TEXT[status], "content": {JSON: {"schema": schema}}}


def _path_parameter(match: re.Match[str]) -> Schema:
    integer = match["converter"] == "int"
    schema = {"type": "integer", "minimum": 0, "example": 1} if integer else {"type": "string"}
    return {"name": match["name"], "in": "path", "required": True, "schema": schema}


def _query_parameters(model: type[BaseModel]) -> list[Schema]:
    properties = openapi_schema(model.model_json_schema()).get("properties", {})
    return [
        {
            "name": name,
            "in": "query",
            "required": field.is_required(),
            "description": field.description or "",
            "schema": properties[name],
        }
        for name, field in model.model_fields.items()
    ]


def openapi_schema(schema: Any) -> Any:
    """JSON Schema 2020-12 (pydantic's) → the OpenAPI 3.0 dialect: ``X | None`` → ``nullable``, ``const`` → a
    one-value ``enum``, ``examples`` → ``example``, numeric ``exclusiveMinimum``/``Maximum`` → booleans."""
    if isinstance(schema, list):
        return [openapi_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Schema = {}
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            out[key] = {name: openapi_schema(item) for name, item in value.items()}
        elif key in ("default", "example", "enum"):
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples":
            out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusiveM", "m")], out[key] = value, True
        else:
            out[key] = openapi_schema(value)
    return _nullable(out)


def _nullable(schema: Schema) -> Schema:
    options = schema.get("anyOf")
    if not options or {"type": "null"} not in options:
        return schema
    rest = [o for o in options if o != {"type": "null"}]
    schema = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(rest) > 1:
        return {**schema, "anyOf": rest, "nullable": True}
    only = rest[0]
    return {**schema, **({"allOf": [only]} if "$ref" in only else only), "nullable": True}
