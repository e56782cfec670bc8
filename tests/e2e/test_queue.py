"""Label Studio's annotator queue (/next) follows tagloop's strategy ranking, and changes with the strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio

from tests.conftest import config_xml, read_rows
from tools.harness import LabelStudioServer, TagloopServer, wait_until
from tools.labelstudio_project import choices_result, ls_request

PROTECT_HEAD = 3  # TAGLOOP_PUSH_PROTECT_HEAD's default


@pytest.fixture
def tagloop(tmp_path: Path) -> Any:
    env = {
        "TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"),
        "TAGLOOP_TRAIN_EVERY": "0",
        "TAGLOOP_PUSH_TOP_K": "15",
        "TAGLOOP_WARMUP_LABELS": "0",  # the strategy ranks from the first label (no random warm-up)
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server


def test_next_task_follows_the_strategy(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer
) -> None:
    client = ls_client
    rows = read_rows("ag_news", 40, offset=4000)
    project = client.projects.create(title="tagloop queue", label_config=config_xml("news_topics"))
    pid = project.id
    client.projects.update(id=pid, sampling="Uncertainty sampling")
    client.ml.create(project=pid, url=tagloop.url, title="tagloop")
    # imported after connecting: tagloop learns the pool from TASKS_CREATED
    ids = list(
        client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in rows], return_task_ids=True).task_ids
    )
    label_of = dict(zip(ids, (r["label"] for r in rows), strict=True))

    def annotate(task_id: int) -> None:
        client.annotations.create(id=task_id, result=choices_result("topic", "text", [label_of[task_id]]))
        labeled.append(task_id)

    labeled: list[int] = []

    def settled() -> dict[str, Any] | None:
        """tagloop has every label (webhooks may arrive after the API call returns), trained on all of them,
        is idle, and Label Studio is on the version whose ranking tagloop pushed."""
        status = requests.get(f"{tagloop.url}/api/projects/{pid}/status", timeout=10).json()
        queue = requests.get(f"{tagloop.url}/api/projects/{pid}/queue", timeout=10).json()
        current = status["current"]
        if status["jobs"] or not queue["tasks"] or not current or current["n_train"] != len(labeled):
            return None
        return queue if client.projects.get(id=pid).model_version == queue["model_version"] else None

    def versions_of(task_id: int) -> list[str]:
        return [str(p.model_version) for p in client.predictions.list(task=task_id)]

    for task_id in ids[:6]:
        annotate(task_id)
    served: list[int] = []
    queue: dict[str, Any] | None = None
    for _ in range(3):
        previous, queue = queue, wait_until(settled, 90, what="a promoted version pushed to Label Studio")
        if previous is not None and previous["model_version"] != queue["model_version"]:
            # the old version's head, still open to an annotator (protected), carries the new version's prediction
            # as well: a /next that picked a task under the old version and serialized it under the new one
            # pre-fills it (Label Studio sends the predictions of the model_version it reads last)
            head = [t for t in previous["tasks"] if t in queue["protected"]][:PROTECT_HEAD]
            assert head, (previous, queue)
            for task_id in head:
                versions = versions_of(task_id)
                assert queue["model_version"] in versions and previous["model_version"] in versions, (task_id, versions)
                assert len(versions) == len(set(versions)), (task_id, versions)  # one per version
        nxt = ls_request(client, "GET", f"/api/projects/{pid}/next/").json()
        assert nxt["id"] == queue["tasks"][0], (nxt["id"], queue)
        served.append(nxt["id"])
        annotate(nxt["id"])  # submitting it releases /next's lock and trains a new version
    assert len(set(served)) == 3

    before = wait_until(settled, 90, what="the version after the third label")
    changed = requests.put(f"{tagloop.url}/api/projects/{pid}/strategy", json={"strategy": "coreset"}, timeout=10)
    assert changed.status_code == 200 and changed.json()["strategy"] == "coreset"
    after = wait_until(
        lambda: (q := settled()) and q["strategy"] == "coreset" and q["tasks"] != before["tasks"] and q,
        90,
        what="the queue re-ranked with coreset",
    )
    nxt = ls_request(client, "GET", f"/api/projects/{pid}/next/").json()
    assert nxt["id"] == after["tasks"][0] and after["queue_strategy"] == "coreset"
    bad = requests.put(f"{tagloop.url}/api/projects/{pid}/strategy", json={"strategy": "best"}, timeout=10)
    assert bad.status_code == 422 and "margin" in bad.json()["reason"]
    client.projects.delete(id=pid)
