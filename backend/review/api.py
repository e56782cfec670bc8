"""Moderation review API: ``POST /api/feedback`` (always keyed) and ``GET /api/projects/<id>/review``.

``/api/feedback`` needs ``Authorization: Bearer <TAGLOOP_API_KEY>`` even where the rest of the API is open:
401 when the key is missing or wrong, 403 ``auth_not_configured`` when the server has no key (nobody could be
authenticated, so every report is refused rather than accepted unauthenticated). Bodies above
``feedback_max_bytes`` get 413. A new report answers 201, a repeat of an ``external_id`` with the same content
200 ``duplicate``, with other content 409.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.api.auth import require_api_key
from backend.api.http import get_services, json_body
from backend.errors import UnprocessableRequest
from backend.review.feedback import submit_feedback
from backend.review.status import queue_items, review_summary

bp = Blueprint("review", __name__)
MAX_LIMIT = 1000


@bp.post("/api/feedback")
def feedback() -> tuple[Response, int]:
    """An external moderation system reports a misclassified text; it joins the FP or FN queue."""
    require_api_key()
    services = get_services()
    request.max_content_length = services.settings.feedback_max_bytes
    body, status = submit_feedback(services, json_body())
    return jsonify(body), status


@bp.get("/api/projects/<int:project_id>/review")
def review(project_id: int) -> Response:
    """Each queue with its size and throughput; with ``?queue=`` also its items in queue order
    (``order=confident|uncertain``, ``state=open|resolved|dismissed``, ``limit``)."""
    services = get_services()
    out = review_summary(services, project_id)
    queue = request.args.get("queue")
    if queue is not None:
        raw = request.args.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise UnprocessableRequest(f"limit: got {raw!r}, expected an integer in [1, {MAX_LIMIT}]")
        items = queue_items(
            services,
            project_id,
            queue,
            order=request.args.get("order"),
            state=request.args.get("state", "open"),
            limit=int(raw),
        )
        out["items"] = [i.as_json() for i in items]
    return jsonify(out)
