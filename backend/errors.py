"""Typed errors. Every error that reaches HTTP becomes JSON ``{"error": code, "reason": message}``.

Hierarchy::

    TagloopError
    ├── SettingsError                 bad configuration (raised at start, never over HTTP)
    ├── RequestError (400)            malformed request body
    │   ├── PayloadTooLarge (413)
    │   └── UnprocessableRequest (422) well-formed JSON that tagloop cannot act on
    │       ├── UnsupportedLabelConfig (422)
    │       └── UnknownLabel (422)
    ├── NotFound (404)
    └── TrainingError                 a training job failed (recorded on the job, never over HTTP)
"""

from __future__ import annotations


class TagloopError(Exception):
    """Base of every error tagloop raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def to_json(self) -> dict[str, str]:
        """The JSON body of the HTTP error."""
        return {"error": self.code, "reason": self.reason}


class SettingsError(TagloopError):
    """A setting has a value outside what it allows."""

    code = "bad_settings"


class RequestError(TagloopError):
    """The request body is malformed."""

    status_code = 400
    code = "bad_request"


class PayloadTooLarge(RequestError):
    """The request body is larger than ``max_body_bytes``."""

    status_code = 413
    code = "payload_too_large"


class UnprocessableRequest(RequestError):
    """Well-formed request that cannot be served as asked."""

    status_code = 422
    code = "unprocessable"


class UnsupportedLabelConfig(UnprocessableRequest):
    """The labeling config has nothing tagloop can serve, or is invalid."""

    code = "unsupported_label_config"


class UnknownLabel(UnprocessableRequest):
    """An annotation names a choice that the project's config does not have."""

    code = "unknown_label"


class NotFound(TagloopError):
    """The named resource does not exist."""

    status_code = 404
    code = "not_found"


class TrainingError(TagloopError):
    """Training could not produce a model."""

    code = "training_failed"
