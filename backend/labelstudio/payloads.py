"""Label Studio request bodies, declared once as pydantic models (``backend.validation.parse`` turns a body into a
model, or a ``RequestError`` naming the field, the value seen and what is allowed).

Label Studio's bodies are loose: every model keeps fields it does not declare. A field's ``description`` says what
it allows; it is shown in ``/openapi.json`` and quoted by the errors (``'tasks': got nothing, expected a list of task
objects``). Validators raise ``invalid(...)`` with the whole reason when a description cannot say it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic import ValidationInfo as Info

from backend.errors import RequestError, UnknownLabel, UnprocessableRequest
from backend.labelstudio.label_config import LabelSpec
from backend.store.records import AnnotationRecord
from backend.validation import invalid, parse, shown

MAX_ID = 2**63 - 1
"""Largest Label Studio id tagloop stores (BIGINT on PostgreSQL, INTEGER on SQLite)."""
M = TypeVar("M", bound=BaseModel)


class Loose(BaseModel):
    """Label Studio sends more than tagloop reads: undeclared fields are allowed (and kept)."""

    model_config = ConfigDict(extra="allow")


def _project_id(value: Any) -> int | None:
    """LS sends ``"<id>.<created unix ts>"`` in /setup and /predict, an int or object elsewhere."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, str) and value.split(".", 1)[0].isdigit():
        value = int(value.split(".", 1)[0])
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
        return value
    raise invalid(f"got {shown(value)}, expected an id like 12 or '12.1700000000' (at most 2**63 - 1)")


def _id_object(value: Any) -> Any:
    """``{"id": 3, ...}`` → ``3``: Label Studio refers to a task or an annotation either way."""
    return value.get("id") if isinstance(value, dict) else value


def _as_object(value: Any) -> Any:
    """``3`` → ``{"id": 3}``: the object form of a reference."""
    return value if value is None or isinstance(value, dict) else {"id": value}


def _or_none(value: Any) -> Any:
    """Loose optional text: a non-string (ignored by tagloop) reads as absent."""
    return value if isinstance(value, str) else None


def _dict_or_none(value: Any) -> Any:
    """Loose optional object: anything else reads as absent."""
    return value if isinstance(value, dict) else None


PROJECT_FORMS: dict[str, Any] = {
    "description": "Label Studio project id: an integer, '<id>.<created unix time>' or a project object.",
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]*)?$", "example": "12.1700000000"},
        {"type": "object", "properties": {"id": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}},
    ],
}
ProjectId = Annotated[int | None, BeforeValidator(_project_id), WithJsonSchema(PROJECT_FORMS)]
"""A project reference in any of Label Studio's forms; ``None`` for an absent or empty one."""


def _required_project_id(value: Any) -> int:
    project = _project_id(value)
    if project is None:
        raise invalid("got nothing, expected the Label Studio project id")
    return project


ProjectRef = Annotated[int, BeforeValidator(_required_project_id), WithJsonSchema(PROJECT_FORMS)]
"""A project reference that must be there."""
LsId = Annotated[int, Field(strict=True, ge=-MAX_ID, le=MAX_ID)]
"""A Label Studio task or annotation id: at most 64 bits."""
IdRef = Annotated[LsId, BeforeValidator(_id_object, json_schema_input_type=int | dict[str, int])]
"""An id, or an object with that ``id``."""
ID = "an integer of at most 2**63 - 1 (a 64-bit id)"
TEXT_EXAMPLE: dict[str, Any] = {"text": "Stocks rally as rates fall."}
CONFIG_EXAMPLE = (
    '<View><Text name="text" value="$text"/><Choices name="topic" toName="text">'
    '<Choice value="World"/><Choice value="Sports"/><Choice value="Business"/><Choice value="Sci/Tech"/>'
    "</Choices></View>"
)


# --- POST /setup and POST /predict -------------------------------------------------------------------------------
class SetupBody(Loose):
    """``POST /setup``: a project's labeling config and where its Label Studio is."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"project": "1.1700000000", "schema": CONFIG_EXAMPLE}]})
    project: ProjectRef = Field(description="the Label Studio project id, e.g. '12.1700000000'")
    schema_: str = Field(alias="schema", description="the labeling config XML as a string")
    hostname: Annotated[str | None, BeforeValidator(_or_none)] = None
    access_token: Annotated[str | None, BeforeValidator(_or_none)] = None


class PredictTask(Loose):
    """A task to predict: its Label Studio id and its ``data``."""

    id: LsId | None = Field(None, description=f"the task's Label Studio id: {ID}")
    data: dict[str, Any] = Field(
        description="an object with the task's fields, e.g. {'text': ...}", examples=[TEXT_EXAMPLE]
    )


class PredictBody(Loose):
    """``POST /predict``: tasks to pre-annotate, answered one prediction per task in request order."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"project": "1.1700000000", "tasks": [{"id": 1, "data": TEXT_EXAMPLE}]}]}
    )
    tasks: list[PredictTask] = Field(description="a list of task objects")
    project: ProjectId = None
    label_config: str | None = Field(None, description="the labeling config XML as a string")

    @field_validator("tasks", mode="before")
    @classmethod
    def _at_most(cls, tasks: Any, info: Info) -> Any:
        limit = (info.context or {}).get("max_tasks")
        if isinstance(tasks, list) and limit is not None and len(tasks) > limit:
            raise invalid(f"got {len(tasks)} tasks; the limit is {limit} per request", unprocessable=True)
        return tasks


# --- POST /webhook -----------------------------------------------------------------------------------------------
class ProjectObject(Loose):
    """The project of a webhook event (Label Studio sends the whole object; tagloop reads two fields)."""

    id: ProjectId = None
    label_config: Annotated[str | None, BeforeValidator(_or_none)] = None


class Annotation(Loose):
    """An annotation as Label Studio sends it in a webhook or lists it in its API."""

    id: LsId = Field(description=f"the annotation's Label Studio id: {ID}")
    task: IdRef | None = Field(None, description=f"the annotated task's id (or the task object): {ID}")
    result: list[Any] | None = Field(
        None, description="a list of Label Studio result objects (tagloop reads those of type 'choices')"
    )
    completed_by: Any = None
    was_cancelled: bool | None = False
    created_at: str | None = None
    updated_at: str | None = None


class EventTask(Loose):
    """A task of a webhook event."""

    id: LsId = Field(description=f"the task's Label Studio id: {ID}")
    data: dict[str, Any] = Field(description="an object with the task's fields", examples=[TEXT_EXAMPLE])


class AnnotatedTask(Loose):
    """The task of an annotation event: its data is stored when tagloop has not seen the task yet."""

    id: LsId | None = Field(None, description=f"the task's Label Studio id: {ID}")
    data: Annotated[dict[str, Any] | None, BeforeValidator(_dict_or_none)] = Field(
        None, description="an object with the task's fields", examples=[TEXT_EXAMPLE]
    )


class DeletedAnnotation(Loose):
    """An annotation of an ``ANNOTATIONS_DELETED`` event (a bare id is accepted too)."""

    id: LsId = Field(description=f"the deleted annotation's Label Studio id: {ID}")


class WebhookBody(Loose):
    """``POST /webhook``: a Label Studio event; the events below are used, any other is acknowledged and ignored."""

    action: str = Field(min_length=1, description="an event name such as 'ANNOTATION_CREATED'")
    project: Annotated[ProjectObject | None, BeforeValidator(_as_object)] = None


class AnnotationEvent(WebhookBody):
    """``ANNOTATION_CREATED``/``UPDATED``: the annotation is stored (upserted by its id)."""

    action: Literal["ANNOTATION_CREATED", "ANNOTATION_UPDATED"]
    annotation: Annotation = Field(description="the annotation object")
    task: Annotated[AnnotatedTask | None, BeforeValidator(_dict_or_none)] = None


class AnnotationsDeleted(WebhookBody):
    """``ANNOTATIONS_DELETED``: the annotations are marked deleted."""

    action: Literal["ANNOTATIONS_DELETED"]
    annotations: list[Annotated[DeletedAnnotation, BeforeValidator(_as_object)]] = Field(
        description="a list of {'id': ...} for ANNOTATIONS_DELETED"
    )


class TasksCreated(WebhookBody):
    """``TASKS_CREATED``: the new tasks join the pool tagloop ranks."""

    action: Literal["TASKS_CREATED"]
    tasks: list[EventTask] = Field(description="a list of task objects, each with an 'id' and a 'data' object")


class StartTraining(WebhookBody):
    """``START_TRAINING``: a slow-tier training is queued (201)."""

    action: Literal["START_TRAINING"]


EVENTS: dict[str, type[WebhookBody]] = {
    name: model
    for model in (AnnotationEvent, AnnotationsDeleted, TasksCreated, StartTraining)
    for name in get_args(model.model_fields["action"].annotation)
}
"""The model of each event tagloop acts on; other events are read as ``WebhookBody``."""
WEBHOOK_BODIES: tuple[type[WebhookBody], ...] = (*dict.fromkeys(EVENTS.values()), WebhookBody)
"""Every form of a /webhook body (for the documentation)."""


@dataclass(frozen=True)
class WebhookEvent:
    """A validated event (the parts tagloop reads). The catch-up builds these from Label Studio's API too."""

    action: str
    project_id: int | None
    label_config: str | None
    annotation: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    deleted_ids: list[int] = field(default_factory=list)
    tasks: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """``TASKS_CREATED``: (LS task id, data) of the new tasks."""


def parse_webhook(body: Any) -> WebhookEvent:
    """Validate a /webhook body with the model of its ``action``."""
    action = body.get("action") if isinstance(body, dict) else None
    event = parse(EVENTS.get(action, WebhookBody) if isinstance(action, str) else WebhookBody, body)
    project = event.project or ProjectObject()
    return WebhookEvent(
        action=event.action,
        project_id=project.id,
        label_config=project.label_config,
        annotation=body["annotation"] if isinstance(event, AnnotationEvent) else None,
        task=event.task.model_dump() if isinstance(event, AnnotationEvent) and event.task else None,
        deleted_ids=[a.id for a in event.annotations] if isinstance(event, AnnotationsDeleted) else [],
        tasks=[(t.id, t.data) for t in event.tasks] if isinstance(event, TasksCreated) else [],
    )


def annotation_record(event: WebhookEvent, spec: LabelSpec) -> AnnotationRecord:
    """The annotation of an ANNOTATION_CREATED/UPDATED event, its choices checked against ``spec``."""
    if event.annotation is None or event.project_id is None:
        raise RequestError(f"{event.action}: expected 'annotation' and 'project' objects")
    ann = parse(Annotation, event.annotation, where="annotation")
    task_id = ann.task if ann.task is not None else _id_object(event.task or {})
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise RequestError(f"annotation.task: got {shown(task_id)}, expected the annotated task's id: {ID}")
    author = ann.completed_by
    if isinstance(author, dict):
        author = author.get("email") or author.get("id")
    return AnnotationRecord(
        id=ann.id,
        project_id=event.project_id,
        task_id=task_id,
        choices=result_choices(ann.result, spec),
        author=str(author or ""),
        was_cancelled=bool(ann.was_cancelled),
        ls_created_at=ann.created_at or "",
        ls_updated_at=ann.updated_at or "",
    )


def result_choices(result: Any, spec: LabelSpec) -> dict[str, list[str]]:
    """``{control: [choice, ...]}`` from an LS annotation ``result``; other result types are ignored."""
    if result is None:
        return {}
    if not isinstance(result, list):
        raise RequestError("annotation.result: expected a list")
    known = {c.name: c for c in spec.controls}
    out: dict[str, list[str]] = {}
    for i, item in enumerate(result):
        if not isinstance(item, dict) or item.get("type") != "choices":
            continue
        control = known.get(str(item.get("from_name")))
        if control is None:
            continue
        choices = (item.get("value") or {}).get("choices") if isinstance(item.get("value"), dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise RequestError(f"annotation.result[{i}].value.choices: expected a list of strings")
        unknown = [c for c in choices if c not in control.labels]
        if unknown:
            raise UnknownLabel(
                f"annotation.result[{i}]: choice(s) {unknown} not in <Choices name={control.name!r}>; "
                f"allowed: {list(control.labels)}"
            )
        if not control.multi_label and len(choices) > 1:
            raise UnprocessableRequest(
                f"annotation.result[{i}]: {len(choices)} choices for single-choice control {control.name!r}"
            )
        out[control.name] = list(dict.fromkeys(choices))
    return out
