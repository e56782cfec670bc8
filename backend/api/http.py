"""Request-body parsing and JSON error responses shared by every blueprint."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from flask import Flask, Response, current_app, jsonify, request
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.errors import NotFound, PayloadTooLarge, RequestError, TagloopError
from backend.services import Services
from backend.validation import parse

log = logging.getLogger(__name__)
MAX_URL_ID = 2**63 - 1
M = TypeVar("M", bound=BaseModel)


def get_services() -> Services:
    """The services of the current Flask app (``create_app`` hangs them on ``app.extensions["tagloop"]``)."""
    services: Services = current_app.extensions["tagloop"]
    return services


def json_body() -> Any:
    """The request body as JSON; 400 for empty, non-UTF-8 or malformed bodies, 413 when too large."""
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"body is larger than the limit of {request.max_content_length} bytes") from None
    if not raw:
        raise RequestError("body is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def parse_body(model: type[M], **context: Any) -> M:
    """The request body validated as ``model`` (``context`` reaches its validators, e.g. a limit from settings).

    Raises:
        RequestError: (400) not JSON, or not the declared shape; ``PayloadTooLarge`` (413) over the body limit;
            ``UnprocessableRequest`` (422) over a declared limit.
    """
    return parse(model, json_body(), context=context or None)


def parse_query(model: type[M]) -> M:
    """The query string validated as ``model``; a bad parameter is a 422 naming it."""
    return parse(model, request.args.to_dict(), unprocessable=True)


def answer(model: type[BaseModel], data: Any, status: int = 200) -> tuple[Response, int]:
    """``data`` as JSON, checked against its declared ``model`` first (a mismatch is a bug: 500, logged)."""
    model.model_validate(data)
    return jsonify(data), status


def _error(status: int, code: str, reason: str) -> tuple[Response, int]:
    return jsonify({"error": code, "reason": reason}), status


def register_id_bounds(app: Flask) -> None:
    """An integer in a URL (e.g. ``/api/projects/<int:project_id>``) above 2**63 - 1 is a 404, not a database
    overflow: no stored id can be that large."""

    @app.url_value_preprocessor
    def _bounded(endpoint: str | None, values: dict[str, Any] | None) -> None:
        for name, value in (values or {}).items():
            if isinstance(value, int) and value > MAX_URL_ID:
                raise NotFound(f"{name}: got {value}, but no id is larger than 2**63 - 1")


def register_error_handlers(app: Flask) -> None:
    """Every error becomes JSON ``{"error", "reason"}``; bodies never carry a traceback."""

    @app.errorhandler(TagloopError)
    def _tagloop(exc: TagloopError) -> tuple[Response, int]:
        if exc.status_code >= 500:
            log.error("%s: %s", type(exc).__name__, exc.reason)
        return jsonify(exc.to_json()), exc.status_code

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        if isinstance(exc, RequestEntityTooLarge):
            return _error(413, "payload_too_large", f"body exceeds {request.max_content_length} bytes")
        name = (exc.name or "error").lower().replace(" ", "_")
        return _error(code, name, exc.description or exc.name or "error")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal_error", f"{type(exc).__name__} while handling {request.path}; see server log")
