"""Label Studio webhook bodies, as Label Studio sends them to ``/webhook``: benches and tests build them here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def annotation_event(
    project: int,
    task: int,
    text: str,
    choices: Sequence[str],
    *,
    control: str = "label",
    label_config: str | None = None,
    annotation_id: int | None = None,
    action: str = "ANNOTATION_CREATED",
    **annotation: Any,
) -> dict[str, Any]:
    """An ``ANNOTATION_CREATED`` (or ``action``) body: one annotation (id ``annotation_id``, default the task id)
    choosing ``choices`` in ``control`` on the task's ``text``; ``label_config`` as the project's, when given;
    ``annotation`` adds fields to the annotation (``updated_at``, ``completed_by``, ...)."""
    result = [{"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}]
    project_body: dict[str, Any] = {"id": project}
    if label_config is not None:
        project_body["label_config"] = label_config
    return {
        "action": action,
        "project": project_body,
        "task": {"id": task, "data": {"text": text}},
        "annotation": {
            "id": task if annotation_id is None else annotation_id,
            "task": task,
            "completed_by": 1,
            "result": result,
            **annotation,
        },
    }
