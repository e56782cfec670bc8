"""Logging for the entry points (``tagloop serve``, ``tagloop worker``) and request ids for the web app.

``configure_logging(settings)`` installs one root handler: ``log_format="text"`` (default, for a terminal) or
``"json"`` (one object per line: ``ts``, ``level``, ``logger``, ``message``, ``request_id`` and any structured
fields such as ``method``, ``path``, ``status``, ``duration_ms``). Every formatted line is scrubbed: the values
of secret settings and URL passwords (``scheme://user:PASSWORD@host``) become ``***``.

``init_app(app)`` gives every request an id (the client's ``X-Request-ID`` if it is a short token, else a new
one), echoes it in the response's ``X-Request-ID`` and writes one access line per request (never headers,
query strings or bodies).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

from backend.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
QUIET_PATHS = frozenset({"/health", "/metrics"})
"""Polled often (Label Studio, Prometheus): their successful access lines are logged at DEBUG."""
STRUCTURED_FIELDS = ("method", "path", "status", "duration_ms", "remote_addr", "job_id", "project")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
access_log = logging.getLogger("tagloop.access")


def secret_values(settings: Settings) -> tuple[str, ...]:
    """The non-empty secret setting values to scrub from log lines (longest first)."""
    values = (settings.api_key, settings.basic_auth_password, settings.label_studio_token)
    return tuple(sorted({v for v in values if len(v) >= 4}, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with URL passwords and the given secret values replaced by ``***``."""
    text = URL_PASSWORD.sub(r"\g<head>***@", text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def printable(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters with control characters escaped (no forged log lines)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id`` to the current request's id, or ``-`` outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format with the request id, scrubbed of secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(TEXT_FORMAT)
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, scrubbed of secrets; exceptions go to an ``exc`` field."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in STRUCTURED_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(out, default=str, ensure_ascii=False), self.secrets)


def make_handler(settings: Settings, stream: object = None) -> logging.Handler:
    """A stream handler (stderr by default) with the formatter of ``settings.log_format``."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    secrets = secret_values(settings)
    handler.setFormatter(JsonFormatter(secrets) if settings.log_format == "json" else TextFormatter(secrets))
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(settings: Settings, *, level: int = logging.INFO) -> None:
    """Replace the root logger's handlers with one handler in ``settings.log_format`` (entry points only)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(settings))
    root.setLevel(level)


def init_app(app: Flask) -> None:
    """Request ids (``X-Request-ID`` in and out) and one access log line per request."""

    @app.before_request
    def _start() -> None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if REQUEST_ID_PATTERN.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started is not None else None
        access_log.log(
            logging.DEBUG if request.path in QUIET_PATHS and response.status_code < 400 else logging.INFO,
            "%s %s %s %s ms",
            request.method,
            printable(request.path),
            response.status_code,
            duration_ms,
            extra={
                "method": request.method,
                "path": printable(request.path),
                "status": response.status_code,
                "duration_ms": duration_ms,
                "remote_addr": request.remote_addr,
            },
        )
        return response
