"""``POST /api/feedback``: an external moderation system reports a misclassified production text.

Body: ``{"project": <LS id>, "text": str, "external_id": str, "predicted": [labels], "correct": [labels],
"reporter": str, "control": str (optional; default: the moderation control)}``. The report is validated
against the project's config, routed to the false-positive or false-negative queue, and stored once per
``external_id`` (a repeat with the same content answers ``duplicate``; with other content, 409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend.errors import NotFound, RequestError, UnknownLabel, UnprocessableRequest
from backend.labelstudio.label_config import ControlSpec, parse_label_config
from backend.labelstudio.payloads import parse_project_id, require_object
from backend.review.errors import IdempotencyConflict, NotModerated
from backend.review.moderation import Moderation, harmful_labels, moderation_control
from backend.review.queues import route_disagreement
from backend.review.routing import REVIEW, review_store
from backend.store.records import NewItem, ReviewItemRecord

if TYPE_CHECKING:
    from backend.services import Services

MAX_EXTERNAL_ID = 200
MAX_ID = 2**63 - 1
"""Largest id a BIGINT column holds (a larger one cannot name a project)."""
MAX_REPORTER = 320


@dataclass(frozen=True)
class FeedbackReport:
    """A validated report."""

    project_id: int
    control: ControlSpec
    text: str
    external_id: str
    predicted: tuple[str, ...]
    correct: tuple[str, ...]
    reporter: str


def _string(body: dict[str, Any], name: str, *, limit: int, required: bool = True) -> str:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and name == "external_id":
        value = str(value)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise RequestError(f"{name!r}: got {value!r}, expected a non-empty string")
    if len(value) > limit:
        raise UnprocessableRequest(f"{name!r} has {len(value)} characters; the limit is {limit}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(f"{name!r}: not valid Unicode (lone surrogate at {exc.start}); send UTF-8 text") from None
    return value


def _labels(body: dict[str, Any], name: str, control: ControlSpec) -> tuple[str, ...]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"{name!r}: got {value!r}, expected a list of label strings")
    unknown = [v for v in value if v not in control.labels]
    if unknown:
        raise UnknownLabel(
            f"{name!r}: label(s) {unknown} not in <Choices name={control.name!r}>; allowed: {list(control.labels)}"
        )
    if not control.multi_label and len(set(value)) > 1:
        raise UnprocessableRequest(f"{name!r}: {value} has several labels; {control.name!r} is single-choice")
    return tuple(dict.fromkeys(value))


def parse_feedback(services: Services, body: Any) -> FeedbackReport:
    """Validate a report against the project's labeling config."""
    body = require_object(body)
    project_id = parse_project_id(body.get("project"))
    if project_id is None:
        raise RequestError("'project': missing; expected the Label Studio project id")
    project = services.store.projects.get(project_id) if project_id <= MAX_ID else None
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop; connect it from Label Studio first")
    spec, named = parse_label_config(project.label_config), services.settings.harmful_label_set
    name = _string(body, "control", limit=200, required=False)
    control = moderation_control(spec, named) if not name else next((c for c in spec.controls if c.name == name), None)
    if control is None or not harmful_labels(control, named):
        choices = [c.name for c in spec.controls if harmful_labels(c, named)]
        raise NotModerated(
            f"project {project_id}: control {name or '(default)'!r} has no harmful classes; moderated controls: "
            f'{choices} (mark classes with harmful="..." on <Choices> or set TAGLOOP_HARMFUL_LABELS)'
        )
    correct = _labels(body, "correct", control)
    if not control.multi_label and len(correct) != 1:
        raise UnprocessableRequest(f"'correct': expected exactly one of {list(control.labels)}, got {list(correct)}")
    return FeedbackReport(
        project_id=project_id,
        control=control,
        text=_string(body, "text", limit=services.settings.max_text_chars),
        external_id=_string(body, "external_id", limit=MAX_EXTERNAL_ID),
        predicted=_labels(body, "predicted", control),
        correct=correct,
        reporter=_string(body, "reporter", limit=MAX_REPORTER, required=False),
    )


def _same(item: ReviewItemRecord, report: FeedbackReport) -> bool:
    return (item.text, sorted(item.predicted), sorted(item.human)) == (
        report.text,
        sorted(report.predicted),
        sorted(report.correct),
    )


def submit_feedback(services: Services, body: Any) -> tuple[dict[str, Any], int]:
    """Store a report as a queue item (idempotent on ``external_id``); (response, HTTP status)."""
    report = parse_feedback(services, body)
    reviews = review_store(services)
    existing = reviews.by_external_id(report.project_id, report.external_id)
    if existing is None:
        mod = Moderation(report.control, harmful_labels(report.control, services.settings.harmful_label_set), {})
        flagged = [h for h in report.predicted if h in mod.harmful]
        route = route_disagreement(mod, flagged, list(report.correct))
        if route is None:
            raise UnprocessableRequest(
                f"predicted {list(report.predicted)} and correct {list(report.correct)} agree on whether the text is "
                f"harmful (harmful classes: {list(mod.harmful)}); only flag / no-flag disagreements are reviewed"
            )
        existing, created = reviews.add_external(_item(report, route.queue, route.reason))
        if created:
            services.request_job(report.project_id, REVIEW, f"feedback {report.external_id}")
            return {"status": "queued", "item": existing.as_json()}, 201
    if not _same(existing, report):
        raise IdempotencyConflict(
            f"external_id {report.external_id!r} was reported as item {existing.id} with other text or labels "
            f"(predicted {list(existing.predicted)}, correct {list(existing.human)}); use a new external_id"
        )
    return {"status": "duplicate", "item": existing.as_json()}, 200


def _item(report: FeedbackReport, queue: str, reason: str) -> NewItem:
    return NewItem(
        project_id=report.project_id,
        queue=queue,
        control=report.control.name,
        value_key=report.control.value_key,
        text=report.text,
        source="feedback",
        predicted=report.predicted,
        human=report.correct,
        reason=f"reported: {reason}",
        reporter=report.reporter,
        external_id=report.external_id,
    )
