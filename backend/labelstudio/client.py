"""Calls tagloop makes to Label Studio's API (through label-studio-sdk), from background jobs only.

What Label Studio on its default SQLite needs from a backend (measured, ``docs/label-studio.md``): few and short
requests. Its SQLite runs with a rollback journal, so every write tagloop makes (prediction import, delete,
project PATCH) and every long read (a listing of all tasks with their annotations) holds the database against the
annotators' own writes (``/next`` records stream history; a submit writes the annotation), which then stall, and
Label Studio re-runs a request that hit "database is locked" (re-running a submit can store it twice). So:
reads list ``task_only`` rows in pages of ``PAGE`` and fetch annotations only for the tasks that have some;
writes are never retried by the client (the SDK retries 5xx, 408, 409 and 429 by default; Label Studio already
re-runs them itself), with a long timeout.

A call that still fails is classified by ``failure``: Label Studio saying the project does not exist is *definite*
(the project is detached at once); an unreachable Label Studio or server errors are not (detached only once they
have lasted ``ls_detach_after_s``, see ``ProjectRepository.ls_failed``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from label_studio_sdk.core.request_options import RequestOptions

log = logging.getLogger(__name__)
PAGE = 100
"""Tasks per listing page: a short read each (Label Studio writes wait for a long one)."""
TIMEOUT_S = 120.0
"""Label Studio may re-run a locked request for about a minute before it answers."""
NO_RETRY: RequestOptions = {"max_retries": 0}


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

    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT_S) -> None:
        from label_studio_sdk import LabelStudio

        self.url = url
        self.sdk = LabelStudio(base_url=url, api_key=token, timeout=timeout)
        """The SDK client itself (the review plug-in manages its review projects through it)."""

    def project_model_version(self, project_id: int) -> str:
        """The project's ``model_version`` (raises the SDK's 404 ``ApiError`` when the project is gone)."""
        return str(self.sdk.projects.get(id=project_id).model_version or "")

    def delete_predictions(self, project_id: int, task_ids: Sequence[int]) -> None:
        """Delete every prediction of the listed tasks (never called with ``all: true``: that wipes the project)."""
        if task_ids:
            self.sdk.actions.create(
                id="delete_tasks_predictions",
                project=project_id,
                selected_items={"all": False, "included": [int(t) for t in task_ids]},
                request_options=NO_RETRY,
            )

    def import_predictions(self, project_id: int, predictions: Sequence[dict[str, Any]]) -> None:
        """One bulk request: ``[{"task", "model_version", "score", "result"}]``."""
        if predictions:
            self.sdk.projects.import_predictions(
                id=project_id,
                request=list(predictions),  # type: ignore[arg-type]
                request_options=NO_RETRY,
            )

    def tasks_updated_since(self, project_id: int, since: str) -> Iterator[dict[str, Any]]:
        """Tasks whose ``updated_at`` is after ``since`` (all when empty), oldest first, without annotations
        (``task_only``: id, data, updated_at, total_annotations, cancelled_annotations, …), ``PAGE`` at a time."""
        items = []
        if since:
            items.append(
                {"filter": "filter:tasks:updated_at", "operator": "greater", "type": "Datetime", "value": since}
            )
        query = {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:updated_at"]}
        yield from self._tasks(project_id, "task_only", query)

    def tasks_with_annotations(self, project_id: int, task_ids: Sequence[int]) -> Iterator[dict[str, Any]]:
        """The listed tasks with their annotations (``fields=all``), ``PAGE`` ids per request."""
        ids = [int(t) for t in task_ids]
        for start in range(0, len(ids), PAGE):
            query = {"selectedItems": {"all": False, "included": ids[start : start + PAGE]}}
            yield from self._tasks(project_id, "all", query)

    def _tasks(self, project_id: int, fields: str, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        task: Any
        for task in self.sdk.tasks.list(
            project=project_id,
            fields=fields,
            page_size=PAGE,
            query=json.dumps(query),
        ):
            yield task.model_dump() if hasattr(task, "model_dump") else dict(task)

    def set_model_version(self, project_id: int, version: str) -> None:
        """PATCH the project's ``model_version`` (LS accepts it only once predictions of it exist)."""
        self.sdk.projects.update(id=project_id, model_version=version, request_options=NO_RETRY)
