"""Calls tagloop makes to Label Studio's API (through label-studio-sdk), from background jobs only.

The SDK retries a request that failed with a 5xx, 408, 409 or 429 (twice, with backoff). What still fails is
classified by ``failure``: Label Studio saying the project does not exist is *definite* (the project is detached
at once); an unreachable Label Studio or repeated server errors are not (detached only once they have lasted
``ls_detach_after_s``, see ``ProjectRepository.ls_failed``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """Why a call to Label Studio failed, and whether that settles that the project is gone."""

    reason: str
    definite: bool


def failure(exc: BaseException, url: str, project_id: int) -> Failure | None:
    """Classify an exception raised by a call to Label Studio at ``url`` (None: not a Label Studio failure)."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        if status == 404:
            return Failure(f"Label Studio at {url} has no project {project_id} (404)", True)
        return Failure(f"Label Studio at {url} answered {status}: {str(exc.body)[:200]}", False)
    if isinstance(exc, httpx.HTTPError):
        return Failure(f"Label Studio at {url} is unreachable: {type(exc).__name__}: {exc}", False)
    return None


class LabelStudioClient:
    """The few Label Studio API calls tagloop needs, for one Label Studio instance."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        from label_studio_sdk import LabelStudio

        self.url = url
        self._sdk = LabelStudio(base_url=url, api_key=token, timeout=timeout)

    def project_model_version(self, project_id: int) -> str:
        """The project's ``model_version`` (raises the SDK's 404 ``ApiError`` when the project is gone)."""
        return str(self._sdk.projects.get(id=project_id).model_version or "")

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

    def tasks_updated_since(self, project_id: int, since: str, *, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Tasks (with their annotations) whose ``updated_at`` is after ``since`` (all when empty), oldest first."""
        items = []
        if since:
            items.append(
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}
            )
        query = {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:updated_at"]}
        task: Any
        for task in self._sdk.tasks.list(
            project=project_id, fields="all", page_size=page_size, query=json.dumps(query)
        ):
            yield task.model_dump() if hasattr(task, "model_dump") else dict(task)

    def set_model_version(self, project_id: int, version: str) -> None:
        """PATCH the project's ``model_version`` (LS accepts it only once predictions of it exist)."""
        self._sdk.projects.update(id=project_id, model_version=version)
