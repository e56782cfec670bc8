"""Tasks are (project, task id): Label Studio reuses task ids across projects; a project Label Studio no longer has is
detached; what the annotator was shown is recorded with the label (acceptance)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from backend.config import Settings
from backend.labelstudio.label_config import parse_label_config
from backend.loop.jobs import run_catch_up, run_push
from backend.services import Services
from tests.backend.test_api_labelstudio import NEWS, annotation_event, setup_project
from tests.conftest import read_rows


def test_the_same_task_ids_in_two_projects_are_two_tasks(client: Any, app: Any) -> None:
    rows = read_rows("ag_news", 3)
    tasks = [{"id": i, "data": {"text": r["text"]}} for i, r in enumerate(rows, start=1)]
    for project in (1, 2):  # project 2 reuses project 1's task ids and texts (a re-created Label Studio project)
        setup_project(client, project, NEWS)
        created = {"action": "TASKS_CREATED", "project": {"id": project}, "tasks": tasks}
        assert client.post("/webhook", json=created).json == {"status": "stored", "changed": 3, "push": None}
    labeled = annotation_event(2, NEWS, 1, 1, rows[0]["text"], "topic", [rows[0]["label"]])
    assert client.post("/webhook", json=labeled).json["changed"] is True
    store = app.extensions["tagloop"].store
    assert [t for t, _ in store.tasks.unlabeled(2, limit=10)] == [2, 3]
    assert [t for t, _ in store.tasks.unlabeled(1, limit=10)] == [1, 2, 3]  # project 1 is untouched
    same_id = annotation_event(1, NEWS, 1, 2, rows[1]["text"], "topic", [rows[1]["label"]])  # annotation id 1 again
    assert client.post("/webhook", json=same_id).json["changed"] is True
    assert store.annotations.get(1, 1).task_id == 2 and store.annotations.get(2, 1).task_id == 1
    deleted = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}], "project": {"id": 2}}
    assert client.post("/webhook", json=deleted).json == {"status": "deleted", "changed": 1}
    assert not store.annotations.get(1, 1).deleted  # only project 2's annotation 1 went


def test_acceptance_compares_the_label_with_the_suggestion_shown(client: Any, app: Any) -> None:
    rows = read_rows("ag_news", 6)
    setup_project(client, 4, NEWS)
    tasks = [{"id": i, "data": {"text": r["text"]}} for i, r in enumerate(rows, start=1)]
    served = client.post("/predict", json={"tasks": tasks, "project": "4.1700000000"}).json["results"]
    shown = [r["result"][0]["value"]["choices"] for r in served]
    for i, r in enumerate(rows, start=1):
        other = next(label for label in ("World", "Sports", "Business", "Sci/Tech") if [label] != shown[i - 1])
        labels = shown[i - 1] if i <= 4 else [other]  # 4 accepted, 2 corrected
        event = annotation_event(4, NEWS, 100 + i, i, r["text"], "topic", labels)
        assert client.post("/webhook", json=event).status_code == 200
    services = app.extensions["tagloop"]
    stored = services.store.annotations.get(4, 101)
    assert stored.accepted is True and stored.suggested["choices"] == {"topic": shown[0]}
    assert services.store.annotations.get(4, 105).accepted is False
    status = client.get("/api/projects/4/status").json
    assert status["acceptance"]["n"] == 6 and status["acceptance"]["last_100"] == pytest.approx(4 / 6, abs=1e-4)
    version = served[0]["model_version"]
    assert status["acceptance"]["by_version"][version] == {"n": 6, "accepted": 4, "share": pytest.approx(0.6667)}
    assert "recommendation" in status["stopping"]


class _Gone(BaseHTTPRequestHandler):
    """A Label Studio that no longer has any project: 404 for everything."""

    def _answer(self) -> None:
        body = json.dumps({"detail": "Not found."}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def gone_label_studio() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_project_label_studio_no_longer_has_is_detached_then_attached_again(
    client: Any, app: Any, gone_label_studio: str
) -> None:
    services: Services = app.extensions["tagloop"]
    spec = parse_label_config(NEWS)
    body = {"project": "5.1700000000", "schema": NEWS, "hostname": gone_label_studio, "access_token": "x" * 40}
    assert client.post("/setup", json=body).status_code == 200
    services.wait_idle(60, 5)  # /setup queued a catch-up: Label Studio answers 404 for the project
    project = services.store.projects.get(5)
    assert project.detached and "404" in project.detached_reason
    status = client.get("/api/projects/5/status").json
    assert status["label_studio"]["detached"] is True and "no project 5" in status["label_studio"]["detached_reason"]
    assert not services.catch_up_if_due(project)  # a detached project costs no job
    assert "detached" in run_push(services, services.store.projects.get(5), spec)["skipped"]
    assert client.post("/setup", json=body).status_code == 200  # Label Studio calls again: attached
    assert not services.store.projects.get(5).detached


def test_an_unreachable_label_studio_detaches_only_after_a_while(settings: Settings, encoder: Any) -> None:
    from backend.bootstrap import build

    spec = parse_label_config(NEWS)
    patient = settings.replace(ls_detach_after_s=3600.0, job_max_attempts=1)
    services = build(patient, base_encoder=encoder)
    try:
        services.store.projects.upsert(6, NEWS, "h", ls_url="http://127.0.0.1:9", ls_token="x" * 40)  # refused
        with pytest.raises(Exception, match="ConnectError|Connection refused"):
            run_catch_up(services, services.store.projects.get(6), spec)
        project = services.store.projects.get(6)
        assert project.ls_failing_since is not None and not project.detached  # not yet: it may come back
        impatient = dataclasses.replace(services, settings=patient.replace(ls_detach_after_s=0.001))
        assert "detached" in run_catch_up(impatient, services.store.projects.get(6), spec)
        assert services.store.projects.get(6).detached
    finally:
        services.close()
