"""Moderation review API: ``POST /api/feedback`` (always keyed) and ``GET /api/projects/<id>/review``.

``/api/feedback`` needs ``Authorization: Bearer <TAGLOOP_API_KEY>`` even where the rest of the API is open:
401 when the key is missing or wrong, 403 ``auth_not_configured`` when the server has no key (nobody could be
authenticated, so every report is refused rather than accepted unauthenticated). Bodies above
``feedback_max_bytes`` get 413. A new report answers 201, a repeat of an ``external_id`` with the same content
200 ``duplicate``, with other content 409.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, request
from pydantic import Field

from backend.api.auth import require_api_key
from backend.api.http import answer, get_services, parse_body, parse_query
from backend.api.openapi import operation
from backend.labelstudio.payloads import Loose
from backend.review.feedback import FeedbackBody, submit_feedback
from backend.review.queues import ORDERS, QUEUES
from backend.review.status import STATES, queue_items, review_summary

bp = Blueprint("review", __name__)
MAX_LIMIT = 1000


class FeedbackAnswer(Loose):
    """The report as a review item: ``queued`` (201) or ``duplicate`` (200)."""

    status: Literal["queued", "duplicate"]
    item: dict[str, Any]


class ReviewQuery(Loose):
    """``GET /api/projects/<id>/review`` query: with ``queue``, that queue's items are listed."""

    queue: str | None = Field(None, description=f"one of {list(QUEUES)}", examples=["false_positive"])
    order: str | None = Field(None, description=f"one of {list(ORDERS)}; default: the queue's own")
    state: str = Field("open", description=f"one of {list(STATES)}")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description=f"an integer in [1, {MAX_LIMIT}]")


class ReviewSummary(Loose):
    """Each review queue with its size and throughput, the flag thresholds and PSI; ``items`` with ``?queue=``."""

    project: int
    moderated: bool
    queues: dict[str, dict[str, Any]]


@bp.post("/api/feedback")
@operation(
    "Report a misclassified production text (always needs the Bearer API key); idempotent on external_id",
    {201: FeedbackAnswer, 200: FeedbackAnswer},
    body=FeedbackBody,
    errors=(403, 404, 409, 422),
)
def feedback() -> tuple[Response, int]:
    """An external moderation system reports a misclassified text; it joins the FP or FN queue."""
    require_api_key()
    services = get_services()
    request.max_content_length = services.settings.feedback_max_bytes
    body = parse_body(FeedbackBody, max_text_chars=services.settings.max_text_chars)
    return answer(FeedbackAnswer, *submit_feedback(services, body))


@bp.get("/api/projects/<int:project_id>/review")
@operation(
    "Review queues with sizes and throughput, thresholds and PSI; ?queue= lists its items in order",
    {200: ReviewSummary},
    query=ReviewQuery,
    errors=(422,),
)
def review(project_id: int) -> tuple[Response, int]:
    """Each queue with its size and throughput; with ``?queue=`` also its items in queue order
    (``order=confident|uncertain``, ``state=open|resolved|dismissed``, ``limit``)."""
    services = get_services()
    query = parse_query(ReviewQuery)
    out = review_summary(services, project_id)
    if query.queue is not None:
        items = queue_items(services, project_id, query.queue, order=query.order, state=query.state, limit=query.limit)
        out["items"] = [i.as_json() for i in items]
    return answer(ReviewSummary, out)
