"""A Label Studio project wired to tagloop, and one annotator working its labeling stream, as the e2e tests, the
benches and ``tagloop demo`` use them. Every call to Label Studio goes through label-studio-sdk's ``LabelStudio``
client; the endpoints the SDK lacks (``GET /api/projects/{id}/next/``) go through the SDK client's own HTTP client,
so base URL, auth, timeout and retries are the SDK's.

Index spaces: project and task ids are Label Studio's; a prediction id is Label Studio's id of a stored prediction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx

from backend.errors import TagloopError
from tools.harness import REPO, TagloopServer, wait_until

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

CONFIGS_DIR = REPO / "annotation_configs"
IMPORT_BATCH = 500
"""Tasks per import request: Label Studio sends each import's TASKS_CREATED webhook with a 1 s timeout."""


class ProjectError(TagloopError):
    """Label Studio refused a set-up call, or a labeling config given by name or path does not exist."""

    code = "label_studio_project_failed"


def read_config(config: str) -> str:
    """Labeling config XML: ``annotation_configs/<config>.xml``, or the file at path ``config``."""
    path = CONFIGS_DIR / f"{config}.xml"
    if not path.exists():
        path = Path(config)
    if not path.is_file():
        known = sorted(p.stem for p in CONFIGS_DIR.glob("*.xml"))
        raise ProjectError(f"config: got {config!r}, expected one of {known} or the path of an XML file")
    return path.read_text()


def choices_result(from_name: str, to_name: str, choices: Sequence[str]) -> list[dict[str, Any]]:
    """An annotation (or prediction) result of one ``<Choices>`` control."""
    return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": list(choices)}}]


def ls_request(client: LabelStudio, method: str, path: str, *, json: Any = None, **params: Any) -> httpx.Response:
    """A Label Studio call the SDK has no method for, through the SDK client's own HTTP client; the raw answer."""
    http = client._client_wrapper.httpx_client
    return http.request(path.lstrip("/"), method=method, json=json, params=params or None)


def create_project(client: LabelStudio, *, title: str, label_config: str) -> int:
    """A project whose labeling stream follows the prediction scores (lowest first: tagloop's queue order) and
    whose labeling page is pre-filled with the prediction; its LS id."""
    project = client.projects.create(
        title=title,
        label_config=label_config,
        sampling="Uncertainty sampling",
        show_collab_predictions=True,
    )
    if project.id is None:
        raise ProjectError(f"Label Studio created project {title!r} without an id")
    return int(project.id)


def connect_tagloop(client: LabelStudio, project_id: int, tagloop_url: str) -> None:
    """Connect tagloop as the project's ML backend (Label Studio calls /health and /setup, and creates the project
    webhook to /webhook)."""
    backend = client.ml.create(project=project_id, url=tagloop_url, title="tagloop", is_interactive=False)
    if backend.state != "CO":
        raise ProjectError(f"ML backend of project {project_id}: state {backend.state!r}, expected 'CO' (connected)")


def import_tasks(client: LabelStudio, project_id: int, data: Sequence[Mapping[str, Any]]) -> list[int]:
    """Import one task per ``data`` item, in batches; the new task ids, in the order of ``data``."""
    from label_studio_sdk.types import ImportApiRequest

    ids: list[int] = []
    for start in range(0, len(data), IMPORT_BATCH):
        batch = [ImportApiRequest(data=dict(item)) for item in data[start : start + IMPORT_BATCH]]
        imported = client.projects.import_tasks(id=project_id, request=batch, return_task_ids=True)
        ids += list(getattr(imported, "task_ids", None) or [])  # Community edition: the ids, in request order
    if len(ids) != len(data):
        raise ProjectError(f"project {project_id}: imported {len(ids)} task ids for {len(data)} tasks")
    return ids


def set_up_project(
    client: LabelStudio,
    tagloop: TagloopServer,
    *,
    title: str,
    label_config: str,
    data: Sequence[Mapping[str, Any]],
    strategy: str | None = None,
) -> tuple[int, list[int]]:
    """Create the project, connect tagloop, THEN import ``data`` (tagloop learns its pool from the TASKS_CREATED
    webhook), then, unless ``strategy`` is None, set the project's tagloop strategy (``""``: tagloop's default),
    which ranks the pool and pushes the head of the queue to Label Studio. (project id, task ids in data order)."""
    project_id = create_project(client, title=title, label_config=label_config)
    connect_tagloop(client, project_id, str(tagloop.url))
    task_ids = import_tasks(client, project_id, data)
    if strategy is not None:
        tagloop.call("PUT", f"/api/projects/{project_id}/strategy", json={"strategy": strategy or None})
    return project_id, task_ids


def delete_projects(client: LabelStudio, title_prefix: str) -> int:
    """Delete every project whose title starts with ``title_prefix``; how many."""
    projects: list[Any] = list(client.projects.list(page_size=1000))
    old = [p.id for p in projects if str(p.title or "").startswith(title_prefix)]
    for project_id in old:
        client.projects.delete(id=int(project_id))
    return len(old)


@dataclass(frozen=True)
class RankedProject:
    """A project whose queue tagloop has ranked and pushed, as Label Studio serves it."""

    id: int
    tasks: int
    model_version: str
    strategy: str
    queue: tuple[int, ...]
    """LS task ids in tagloop's queue order (first = the next task an annotator gets)."""


def wait_for_queue(client: LabelStudio, tagloop: TagloopServer, project_id: int, timeout: float = 180) -> RankedProject:
    """Block until tagloop has pushed its ranking and Label Studio's project serves that version."""

    def pushed() -> RankedProject | None:
        queue = tagloop.call("GET", f"/api/projects/{project_id}/queue")
        project = client.projects.get(id=project_id)
        if not queue["tasks"] or project.model_version != queue["model_version"]:
            return None
        tasks = int(project.task_number or 0)
        return RankedProject(project_id, tasks, queue["model_version"], queue["strategy"], tuple(queue["tasks"]))

    return wait_until(pushed, timeout, 1.0, f"tagloop to rank project {project_id} and push its queue to Label Studio")


# ----------------------------------------------------------------------------------------------- the annotator


@dataclass(frozen=True)
class Suggestion:
    """A prediction of the task, as the annotator saw it."""

    choices: tuple[str, ...]
    model_version: str
    prediction_id: int
    prefilled: bool
    """It came with ``/next`` (a prediction of the project's model_version): the labeling page pre-fills it and
    the submit names it as ``parent_prediction``. False: the task's newest prediction of another version."""


@dataclass(frozen=True)
class ServedTask:
    """A task ``/next`` served, with the suggestion shown and how long ``/next`` took."""

    id: int
    data: dict[str, Any]
    suggestion: Suggestion | None
    next_ms: float


@dataclass(frozen=True)
class LsFailure:
    """A non-2xx answer (``status`` 0: no answer at all) Label Studio gave the annotator."""

    call: str
    status: int
    body: str


class Annotator:
    """One annotator in the labeling stream of a project with one ``<Choices>`` control (``from_name`` on
    ``to_name``): takes ``/next``, submits the task it served as the labeling page does. Use a client without
    retries (``LabelStudioServer.client(max_retries=0)``): the browser does not retry a failed call either."""

    def __init__(self, client: LabelStudio, project_id: int, from_name: str, to_name: str) -> None:
        self.client, self.project_id, self.from_name, self.to_name = client, project_id, from_name, to_name

    def next_task(self) -> ServedTask | LsFailure:
        """``GET /api/projects/{id}/next/``, timed, with the suggestion the page shows."""
        call = f"GET /api/projects/{self.project_id}/next/"
        started = time.perf_counter()
        try:
            response = ls_request(self.client, "GET", call.split(" ", 1)[1])
        except httpx.HTTPError as exc:
            return LsFailure(call, 0, repr(exc)[:300])
        next_ms = (time.perf_counter() - started) * 1000
        if not response.is_success:
            return LsFailure(call, response.status_code, response.text[:300])
        task = response.json()
        suggestion = self._shown(task.get("predictions") or []) or self._newest(int(task["id"]))
        return ServedTask(int(task["id"]), dict(task.get("data") or {}), suggestion, next_ms)

    def submit(self, task: ServedTask, choices: Sequence[str], lead_time: float) -> LsFailure | None:
        """``POST /api/tasks/{id}/annotations?project=P`` with what the labeling page sends (the result, lead
        time, and the pre-filled prediction as ``parent_prediction``); the failure, if any."""
        from label_studio_sdk.core.api_error import ApiError

        prefilled = task.suggestion if task.suggestion is not None and task.suggestion.prefilled else None
        try:
            self.client.annotations.create(
                id=task.id,
                result=choices_result(self.from_name, self.to_name, choices),
                lead_time=lead_time,
                parent_prediction=prefilled.prediction_id if prefilled else None,
                request_options={"additional_query_parameters": {"project": self.project_id}},
            )
        except ApiError as exc:
            return LsFailure(f"POST /api/tasks/{task.id}/annotations", exc.status_code or 0, str(exc.body)[:300])
        except httpx.HTTPError as exc:
            return LsFailure(f"POST /api/tasks/{task.id}/annotations", 0, repr(exc)[:300])
        return None

    def _choices(self, result: Sequence[Mapping[str, Any]]) -> tuple[str, ...] | None:
        for item in result:
            if item.get("from_name") == self.from_name and item.get("type") == "choices":
                return tuple(item.get("value", {}).get("choices", []))
        return None

    def _shown(self, predictions: Sequence[Mapping[str, Any]]) -> Suggestion | None:
        """The first prediction ``/next`` sent (Label Studio sends those of the project's model_version)."""
        for p in predictions:
            choices = self._choices(p.get("result") or [])
            if choices is not None:
                return Suggestion(choices, str(p.get("model_version")), int(p["id"]), prefilled=True)
        return None

    def _newest(self, task_id: int) -> Suggestion | None:
        """The task's newest prediction of any version (none came with ``/next``)."""
        listed = self.client.predictions.list(task=task_id, request_options={"max_retries": 2})  # not the page's call
        predictions = sorted(listed, key=lambda p: p.id or 0, reverse=True)
        for p in predictions:
            choices = self._choices(cast(list[dict[str, Any]], p.result))
            if choices is not None:
                return Suggestion(choices, str(p.model_version), int(p.id or 0), prefilled=False)
        return None
