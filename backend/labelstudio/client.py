"""Calls tagloop makes to Label Studio's API (through label-studio-sdk), used from background jobs only."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

log = logging.getLogger(__name__)


class LabelStudioClient:
    """The few Label Studio API calls tagloop needs, for one Label Studio instance."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        from label_studio_sdk import LabelStudio

        self.url = url
        self._sdk = LabelStudio(base_url=url, api_key=token, timeout=timeout)

    def delete_predictions(self, project_id: int, task_ids: Sequence[int]) -> None:
        """Delete every prediction of the listed tasks (never called with ``all: true``: that wipes the project)."""
        if task_ids:
            self._sdk.actions.create(
                id="delete_tasks_predictions",
                project=project_id,
                selected_items={"all": False, "included": [int(t) for t in task_ids]},
            )

    def import_predictions(self, project_id: int, predictions: Sequence[dict[str, Any]]) -> None:
        """One bulk request: ``[{"task", "model_version", "score", "result"}]``."""
        if predictions:
            self._sdk.projects.import_predictions(id=project_id, request=list(predictions))  # type: ignore[arg-type]

    def tasks_updated_since(self, project_id: int, since: str) -> Iterator[dict[str, Any]]:
        """Tasks (with their annotations) whose ``updated_at`` is after ``since`` (all when empty), oldest first."""
        items = []
        if since:
            items.append(
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}
            )
        query = {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:updated_at"]}
        task: Any
        for task in self._sdk.tasks.list(project=project_id, fields="all", page_size=500, query=json.dumps(query)):
            yield task.model_dump() if hasattr(task, "model_dump") else dict(task)

    def set_model_version(self, project_id: int, version: str) -> None:
        """PATCH the project's ``model_version`` (LS accepts it only once predictions of it exist)."""
        self._sdk.projects.update(id=project_id, model_version=version)
