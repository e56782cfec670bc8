"""Label Studio request bodies → typed values. Raises ``RequestError`` subclasses naming what is wrong."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from backend.errors import RequestError, UnknownLabel, UnprocessableRequest
from backend.labelstudio.label_config import ControlSpec, LabelSpec
from backend.store.records import AnnotationRecord

MAX_ID = 2**63 - 1
"""Largest Label Studio id tagloop stores (BIGINT on PostgreSQL, INTEGER on SQLite)."""


@dataclass(frozen=True)
class PredictTask:
    """A task of a /predict request: LS task id and its ``data``."""

    id: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class PredictRequest:
    """Body of ``POST /predict``."""

    tasks: list[PredictTask]
    project_id: int | None
    label_config: str | None


@dataclass(frozen=True)
class WebhookEvent:
    """Body of ``POST /webhook`` (the parts tagloop reads)."""

    action: str
    project_id: int | None
    label_config: str | None
    annotation: dict[str, Any] | None = None
    task: dict[str, Any] | None = None
    deleted_ids: list[int] = field(default_factory=list)
    tasks: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """``TASKS_CREATED``: (LS task id, data) of the new tasks."""


def parse_project_id(value: Any) -> int | None:
    """LS sends ``"<id>.<created unix ts>"`` in /setup and /predict, an int or object elsewhere."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        raise RequestError(f"project: got {value!r}, expected an id like 12 or '12.1700000000'")
    if isinstance(value, str) and value.split(".", 1)[0].isdigit():
        value = int(value.split(".", 1)[0])
    if isinstance(value, int) and 0 <= value <= MAX_ID:
        return value
    raise RequestError(f"project: got {value!r}, expected an id like 12 or '12.1700000000' (at most 2**63 - 1)")


def require_object(body: Any) -> dict[str, Any]:
    """The body must be a JSON object."""
    if not isinstance(body, dict):
        raise RequestError(f"body: got JSON {type(body).__name__}, expected an object")
    return body


def parse_predict(body: Any, *, max_tasks: int) -> PredictRequest:
    """Validate a /predict body."""
    body = require_object(body)
    tasks = body.get("tasks")
    if not isinstance(tasks, list):
        raise RequestError(
            f"'tasks': got {type(tasks).__name__ if tasks is not None else 'nothing'}, expected a list of task objects"
        )
    if len(tasks) > max_tasks:
        raise UnprocessableRequest(f"'tasks' has {len(tasks)} items; the limit is {max_tasks} per request")
    parsed = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise RequestError(f"tasks[{i}]: expected an object with a 'data' object")
        tid = task.get("id")
        if tid is not None:
            tid = _int_field(f"tasks[{i}].id", tid)
        parsed.append(PredictTask(id=tid, data=task["data"]))
    config = body.get("label_config")
    if config is not None and not isinstance(config, str):
        raise RequestError("'label_config': expected a string")
    return PredictRequest(tasks=parsed, project_id=parse_project_id(body.get("project")), label_config=config)


def parse_webhook(body: Any) -> WebhookEvent:
    """Validate a /webhook body."""
    body = require_object(body)
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise RequestError(f"'action': got {action!r}, expected an event name such as 'ANNOTATION_CREATED'")
    project = body.get("project")
    config = project.get("label_config") if isinstance(project, dict) else None
    deleted: list[int] = []
    if action == "ANNOTATIONS_DELETED":
        items = body.get("annotations")
        if not isinstance(items, list):
            raise RequestError("'annotations': expected a list of {'id': ...} for ANNOTATIONS_DELETED")
        for i, item in enumerate(items):
            aid = item.get("id") if isinstance(item, dict) else item
            deleted.append(_int_field(f"annotations[{i}].id", aid))
    tasks: list[tuple[int, dict[str, Any]]] = []
    if action == "TASKS_CREATED":
        items = body.get("tasks")
        if not isinstance(items, list):
            raise RequestError("'tasks': expected a list of task objects for TASKS_CREATED")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                raise RequestError(f"tasks[{i}]: expected an object with an 'id' and a 'data' object")
            tasks.append((_int_field(f"tasks[{i}].id", item.get("id")), item["data"]))
    annotation = body.get("annotation")
    task = body.get("task")
    return WebhookEvent(
        action=action,
        project_id=parse_project_id(project),
        label_config=config if isinstance(config, str) else None,
        annotation=annotation if isinstance(annotation, dict) else None,
        task=task if isinstance(task, dict) else None,
        deleted_ids=deleted,
        tasks=tasks,
    )


def annotation_record(event: WebhookEvent, spec: LabelSpec) -> AnnotationRecord:
    """The annotation of an ANNOTATION_CREATED/UPDATED event, its choices checked against ``spec``."""
    ann, project_id = event.annotation, event.project_id
    if ann is None or project_id is None:
        raise RequestError(f"{event.action}: expected 'annotation' and 'project' objects")
    aid, task = ann.get("id"), ann.get("task")
    task_id = task.get("id") if isinstance(task, dict) else task
    if event.task is not None and task_id is None:
        task_id = event.task.get("id")
    aid, task_id = _int_field("annotation.id", aid), _int_field("annotation.task", task_id)
    author = ann.get("completed_by")
    if isinstance(author, dict):
        author = author.get("email") or author.get("id")
    return AnnotationRecord(
        id=aid,
        project_id=project_id,
        task_id=task_id,
        choices=result_choices(ann.get("result"), spec),
        author=str(author or ""),
        was_cancelled=bool(ann.get("was_cancelled", False)),
        ls_created_at=str(ann.get("created_at") or ""),
        ls_updated_at=str(ann.get("updated_at") or ""),
    )


def _int_field(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name}: got {value!r}, expected an integer")
    if abs(value) > MAX_ID:
        raise RequestError(f"{name}: got {value}, expected an id of at most 2**63 - 1 (a 64-bit integer)")
    return value


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


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment (``<HyperText>``), whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\s+", " ", html.unescape(" ".join(parser.parts))).strip()


def control_text(control: ControlSpec, data: dict[str, Any], *, task_ref: str, max_chars: int) -> str:
    """The plain text a control classifies, from a task's ``data``; truncated to ``max_chars``."""
    if control.value_key not in data or data[control.value_key] is None:
        raise UnprocessableRequest(
            f"{task_ref}: data has no {control.value_key!r} field (needed by <{control.object_tag} "
            f"name={control.to_name!r}>); data keys: {sorted(data)[:20]}"
        )
    value = data[control.value_key]
    if control.object_tag == "Paragraphs":
        if not isinstance(value, list):
            raise UnprocessableRequest(f"{task_ref}: {control.value_key!r} must be a list of paragraphs")
        text = "\n".join(str(p.get(control.paragraph_text_key, "")) if isinstance(p, dict) else str(p) for p in value)
    elif isinstance(value, (dict, list)):
        raise UnprocessableRequest(f"{task_ref}: {control.value_key!r} is a {type(value).__name__}, expected text")
    else:
        text = str(value)
        if control.object_tag == "HyperText":
            text = html_to_text(text[: max_chars * 4])
    return text[:max_chars]
