"""A real Label Studio 1.23 connects to tagloop with HTTP Basic auth (the ML backend's *Basic Auth* method).

Label Studio sends ``basic_auth_user``/``basic_auth_pass`` on /health, /setup, /predict and START_TRAINING; its
auto-created project webhook carries no credentials, so it needs an ``Authorization`` header in the webhook's
headers (README, "Operating tagloop"). tagloop's own API takes the Bearer key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from tests.conftest import config_xml, read_rows
from tools.harness import LabelStudioServer, TagloopServer, wait_until
from tools.labelstudio_project import choices_result

USER, PASSWORD, API_KEY = "labelstudio", "b4sic-e2e-9f1c2d", "api-e2e-5b7a3e"


@pytest.fixture
def tagloop(tmp_path: Path) -> Iterator[TagloopServer]:
    env = {
        "TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"),
        "TAGLOOP_BASIC_AUTH_USER": USER,
        "TAGLOOP_BASIC_AUTH_PASSWORD": PASSWORD,
        "TAGLOOP_API_KEY": API_KEY,
        "TAGLOOP_LOG_FORMAT": "json",
        "TAGLOOP_TRAIN_EVERY": "0",
        "TAGLOOP_FAST_TIER": "false",
        "TAGLOOP_SERVE_PRECISION": "torch",
        "TAGLOOP_CATCH_UP_EVERY_S": "3600",  # only webhooks deliver labels here (no catch-up read-back)
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server


def status(tagloop: TagloopServer, project: int) -> dict[str, Any]:
    r = requests.get(
        f"{tagloop.url}/api/projects/{project}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    r.raise_for_status()
    return r.json()


def annotate(client: LabelStudio, task_id: int, label: str) -> None:
    client.annotations.create(id=task_id, result=choices_result("topic", "text", [label]))


def test_label_studio_connects_with_basic_auth(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer
) -> None:
    client = ls_client
    rows = read_rows("ag_news", 4, offset=5000)
    pid = client.projects.create(title="tagloop basic auth", label_config=config_xml("news_topics")).id
    ids = list(
        client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in rows], return_task_ids=True).task_ids
    )

    # without credentials tagloop refuses, and says how to authenticate
    r = requests.post(f"{tagloop.url}/setup", json={"project": str(pid), "schema": "<View/>"}, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")

    # wrong password: /health is open, but LS's connection check calls /setup, gets 401 and refuses to save it
    with pytest.raises(ApiError) as refused:
        client.ml.create(
            project=pid,
            url=tagloop.url,
            title="wrong",
            auth_method="BASIC_AUTH",
            basic_auth_user=USER,
            basic_auth_pass="x",
        )
    assert refused.value.status_code == 400 and "401" in str(refused.value.body)
    assert client.ml.list(project=pid) == []

    backend = client.ml.create(
        project=pid,
        url=tagloop.url,
        title="tagloop",
        auth_method="BASIC_AUTH",
        basic_auth_user=USER,
        basic_auth_pass=PASSWORD,
    )
    assert backend.state == "CO", backend
    assert status(tagloop, pid)["project"] == pid  # /setup got through with Basic auth

    # /predict with Basic auth: opening a task gives a pre-annotation
    (prediction,) = client.tasks.get(id=str(ids[0])).predictions or []
    pred = prediction.model_dump() if hasattr(prediction, "model_dump") else dict(prediction)
    assert pred["model_version"] == status(tagloop, pid)["model_version"]

    # the auto-created webhook has no credentials: its events are refused until the header is added
    (hook,) = [h for h in client.webhooks.list(project=str(pid)) if h.url.rstrip("/").endswith("/webhook")]
    annotate(client, ids[0], rows[0]["label"])
    assert status(tagloop, pid)["labels_seen"] == 0
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    client.webhooks.update(id=hook.id, url=hook.url, headers={"Authorization": f"Basic {token}"})
    annotate(client, ids[1], rows[1]["label"])
    wait_until(lambda: status(tagloop, pid)["labels_seen"] == 1, 30, what="the webhook with Basic auth to arrive")

    # START_TRAINING goes through LS's ML API client, with Basic auth
    client.ml.train(id=backend.id)
    wait_until(lambda: status(tagloop, pid)["training"]["setfit"], 30, what="START_TRAINING to queue a job")

    log = tagloop.log_path.read_text()
    assert '"status": 401' in log and '"path": "/webhook"' in log  # the refused webhook is in the access log
    for secret in (PASSWORD, API_KEY, token):
        assert secret not in log
    client.projects.delete(id=pid)
