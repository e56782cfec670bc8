"""``POST /api/feedback``: an external moderation system reports a misclassified production text.

The body is a ``FeedbackBody`` (its shape checked by ``backend.api``); ``parse_feedback`` checks it against the
project's config; the report is routed to the false-positive or false-negative queue, and stored once per
``external_id`` (a repeat with the same content answers ``duplicate``; with other content, 409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from backend.errors import NotFound, UnknownLabel, UnprocessableRequest
from backend.labelstudio.label_config import ControlSpec, parse_label_config
from backend.labelstudio.payloads import Loose, ProjectRef
from backend.review.errors import IdempotencyConflict, NotModerated
from backend.review.moderation import Moderation, harmful_labels, moderation_control
from backend.review.queues import route_disagreement
from backend.review.routing import REVIEW, review_store
from backend.store.records import NewItem, ReviewItemRecord
from backend.validation import invalid

if TYPE_CHECKING:
    from backend.services import Services

MAX_EXTERNAL_ID = 200
MAX_ID = 2**63 - 1
"""Largest id a BIGINT column holds (a larger one cannot name a project)."""
MAX_REPORTER = 320
NON_EMPTY = r"\S"


def _id_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class FeedbackBody(Loose):
    """``POST /api/feedback``: a production text the moderation model got wrong."""

    project: ProjectRef = Field(description="the Label Studio project id")
    text: str = Field(
        pattern=NON_EMPTY,
        description="a non-empty string: the text (at most TAGLOOP_MAX_TEXT_CHARS characters)",
        examples=["you people are all the same"],
    )
    external_id: Annotated[str, BeforeValidator(_id_text, json_schema_input_type=str | int)] = Field(
        pattern=NON_EMPTY,
        max_length=MAX_EXTERNAL_ID,
        description="a non-empty string (or an integer): your id of the report; a repeat answers 'duplicate'",
        examples=["mod-123"],
    )
    predicted: list[str] = Field(description="a list of label strings: what was predicted", examples=[["Violating"]])
    correct: list[str] = Field(description="a list of label strings: the right labels", examples=[["Safe"]])
    reporter: str | None = Field(None, max_length=MAX_REPORTER, description="who reports (a string)")
    control: str | None = Field(
        None, max_length=200, description="a <Choices> name; default: the project's moderation control"
    )

    @field_validator("text")
    @classmethod
    def _at_most(cls, text: str, info: ValidationInfo) -> str:
        limit = (info.context or {}).get("max_text_chars")
        if limit is not None and len(text) > limit:
            raise invalid(f"got {len(text)} characters; the limit is {limit}", unprocessable=True)
        return text


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


def _labels(value: list[str], name: str, control: ControlSpec) -> tuple[str, ...]:
    unknown = [v for v in value if v not in control.labels]
    if unknown:
        raise UnknownLabel(
            f"{name!r}: label(s) {unknown} not in <Choices name={control.name!r}>; allowed: {list(control.labels)}"
        )
    if not control.multi_label and len(set(value)) > 1:
        raise UnprocessableRequest(f"{name!r}: {value} has several labels; {control.name!r} is single-choice")
    return tuple(dict.fromkeys(value))


def parse_feedback(services: Services, body: FeedbackBody) -> FeedbackReport:
    """Check a report against the project's labeling config."""
    project = services.store.projects.get(body.project)
    if project is None:
        raise NotFound(f"project {body.project} is not known to tagloop; connect it from Label Studio first")
    spec, named, name = parse_label_config(project.label_config), services.settings.harmful_label_set, body.control
    control = moderation_control(spec, named) if not name else next((c for c in spec.controls if c.name == name), None)
    if control is None or not harmful_labels(control, named):
        choices = [c.name for c in spec.controls if harmful_labels(c, named)]
        raise NotModerated(
            f"project {body.project}: control {name or '(default)'!r} has no harmful classes; moderated controls: "
            f'{choices} (mark classes with harmful="..." on <Choices> or set TAGLOOP_HARMFUL_LABELS)'
        )
    correct = _labels(body.correct, "correct", control)
    if not control.multi_label and len(correct) != 1:
        raise UnprocessableRequest(f"'correct': expected exactly one of {list(control.labels)}, got {list(correct)}")
    return FeedbackReport(
        project_id=body.project,
        control=control,
        text=body.text,
        external_id=body.external_id,
        predicted=_labels(body.predicted, "predicted", control),
        correct=correct,
        reporter=body.reporter or "",
    )


def _same(item: ReviewItemRecord, report: FeedbackReport) -> bool:
    return (item.text, sorted(item.predicted), sorted(item.human)) == (
        report.text,
        sorted(report.predicted),
        sorted(report.correct),
    )


def submit_feedback(services: Services, body: FeedbackBody) -> tuple[dict[str, Any], int]:
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
