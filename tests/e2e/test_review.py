"""Moderation review against a real Label Studio 1.23: a version flags a safe tweet of davidson_hate, an annotator
overturns the flag, the item appears in the false-positive review project, a moderator's verdict there trains a
new version and the item leaves the queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio

from tests.conftest import config_xml, read_rows
from tests.e2e.harness import LabelStudioServer, TagloopServer, wait_until

DAVIDSON = {"hate_speech": "Violating", "offensive_language": "Potentially Harmful", "neither": "Safe"}
HARMFUL = ("Potentially Harmful", "Violating")


@pytest.fixture
def tagloop(tmp_path: Path) -> Iterator[TagloopServer]:
    env = {
        "TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"),
        "TAGLOOP_TRAIN_EVERY": "0",  # fast tier only: heads refit on cached embeddings
        "TAGLOOP_PROMOTION_TOLERANCE": "1",
        "TAGLOOP_SERVE_PRECISION": "torch",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server


def choices(labels: list[str]) -> list[dict[str, Any]]:
    return [{"from_name": "moderation", "to_name": "text", "type": "choices", "value": {"choices": labels}}]


def review(tagloop: TagloopServer, pid: int) -> dict[str, Any]:
    return requests.get(f"{tagloop.url}/api/projects/{pid}/review", timeout=10).json()


def status(tagloop: TagloopServer, pid: int) -> dict[str, Any]:
    return requests.get(f"{tagloop.url}/api/projects/{pid}/status", timeout=10).json()


def test_overturned_flag_reaches_the_fp_review_project_and_the_verdict_retrains(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer
) -> None:
    client = ls_client
    rows = read_rows("davidson_hate", 400)
    by = {k: [r for r in rows[80:] if r["label"] == k] for k in DAVIDSON}
    labeled = by["neither"][:10] + by["offensive_language"][:14] + by["hate_speech"][:8]
    pool = rows[:80]  # a natural slice: ~80% offensive, some safe tweets among them
    pid = client.projects.create(title="tagloop moderation", label_config=config_xml("content_moderation")).id
    # labeled before tagloop is connected: the catch-up on /setup reads them, one fast-tier version follows
    client.projects.import_tasks(
        id=pid,
        request=[
            {"data": {"text": r["text"]}, "annotations": [{"result": choices([DAVIDSON[r["label"]]])}]} for r in labeled
        ],  # type: ignore[misc]
    )
    ids = list(
        client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in pool], return_task_ids=True).task_ids
    )
    client.ml.create(project=pid, url=tagloop.url, title="tagloop")
    version = wait_until(
        lambda: (
            (s := status(tagloop, pid))["current"] and s["current"]["n_train"] == len(labeled) and s["model_version"]
        ),
        90,
        what="a fast-tier version trained on the imported labels",
    )
    wait_until(lambda: client.projects.get(id=pid).model_version == version, 60, what="its predictions pushed to LS")

    # the safe tweet the version flags most surely, as Label Studio shows its prediction
    thresholds = review(tagloop, pid)["thresholds_in_force"]
    best: tuple[float, int, str] | None = None
    for task_id, row in zip(ids, pool, strict=True):
        if row["label"] != "neither":
            continue
        (pred,) = [p.model_dump() for p in client.tasks.get(id=str(task_id)).predictions or []]
        assert pred["model_version"] == version
        probs = pred["result"][0]["meta"]["probabilities"]
        margin = max(probs[h] - thresholds.get(h, 0.5) for h in HARMFUL)
        if margin >= 0 and (best is None or margin > best[0]):
            best = (margin, task_id, row["text"])
    assert best is not None, "the version flags none of the safe tweets"
    _, flagged_task, text = best

    client.annotations.create(id=flagged_task, result=choices(["Safe"]))  # the annotator overturns the flag
    fp_project = wait_until(
        lambda: review(tagloop, pid)["queues"]["false_positive"]["label_studio_project"],
        60,
        what="the false-positive review project in Label Studio",
    )
    review_tasks = wait_until(
        lambda: [t for t in client.tasks.list(project=fp_project, fields="all") if t.data["text"] == text],
        60,
        what="the overturned flag as a task of the review project",
    )
    (review_task,) = review_tasks
    assert review_task.data["model_version"] == version and review_task.data["model_label"] != "(no harmful label)"
    assert "human said ['Safe']" in review_task.data["reason"]
    assert client.projects.get(id=fp_project).title.startswith("tagloop review false positive")

    client.annotations.create(id=review_task.id, result=choices(["Safe"]))  # the moderator's verdict
    wait_until(
        lambda: (q := review(tagloop, pid)["queues"]["false_positive"])["open"] == 0 and q["resolved"] == 1,
        30,
        what="the verdict to close the item",
    )
    retrained = wait_until(
        lambda: (c := status(tagloop, pid)["current"]) and c["metrics"]["review"].get("moderator_labels") == 1 and c,
        90,
        what="a new version trained with the moderator's label",
    )
    assert retrained["name"] != version and retrained["n_train"] == len(labeled) + 1
    item = requests.get(
        f"{tagloop.url}/api/projects/{pid}/review?queue=false_positive&state=resolved", timeout=10
    ).json()["items"][0]
    assert (item["verdict"], item["task_id"], item["ls_task_id"]) == (["Safe"], flagged_task, review_task.id)
    for queue in review(tagloop, pid)["queues"].values():
        if queue["label_studio_project"]:
            client.projects.delete(id=queue["label_studio_project"])
    client.projects.delete(id=pid)
