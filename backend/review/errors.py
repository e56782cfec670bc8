"""Errors of the review API (``TagloopError`` subclasses, so the app's handlers turn them into JSON).

Hierarchy (under ``backend.errors``; authentication errors are ``backend.api.auth``'s: 401 ``unauthorized`` for
a missing or wrong Bearer key, 403 ``auth_not_configured`` when the server has no ``TAGLOOP_API_KEY``)::

    TagloopError
    └── RequestError (400)
        ├── IdempotencyConflict (409)    an ``external_id`` reported again with different content
        └── UnprocessableRequest (422)
            └── NotModerated (422)       the project has no harmful classes
"""

from __future__ import annotations

from backend.errors import RequestError, UnprocessableRequest


class IdempotencyConflict(RequestError):
    """An ``external_id`` already reported with a different text or labels."""

    status_code = 409
    code = "idempotency_conflict"


class NotModerated(UnprocessableRequest):
    """The project's labeling config marks no harmful class and the settings name none."""

    code = "not_moderated"
