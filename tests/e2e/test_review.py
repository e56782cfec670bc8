"""Moderation review against a real Label Studio 1.23, with tagloop's store on PostgreSQL: a version flags a safe
tweet of davidson_hate, an annotator overturns the flag, the item appears in the false-positive review project, a
moderator's verdict there trains a new version and the item leaves the queue; then a SetFit and a transformer
version, so every job kind (catch-up, fast, push, review, setfit, transformer) has run to ``done`` on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio

from backend.jobs.kinds import JobKind
from tests.e2e.moderation import TAGLOOP_ENV, choices, moderation_project, most_surely_flagged, tagloop_api
from tools.harness import LabelStudioServer, TagloopServer, wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def moderation_tagloop(tmp_path: Path, postgres_url: str) -> Iterator[TagloopServer]:
    """The moderation tests' tagloop server, its store on a fresh PostgreSQL database; small slow tiers."""
    env = {
        "TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"),
        "TAGLOOP_DATABASE_URL": postgres_url,
        "TAGLOOP_SETFIT_MAX_STEPS": "4",
        "TAGLOOP_TRANSFORMER_EPOCHS": "1",
        **TAGLOOP_ENV,
    }
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server


def review(tagloop: TagloopServer, pid: int) -> dict[str, Any]:
    return dict(tagloop_api(tagloop, pid, "/review"))


def status(tagloop: TagloopServer, pid: int) -> dict[str, Any]:
    return dict(tagloop_api(tagloop, pid, "/status"))


def test_overturned_flag_reaches_the_fp_review_project_and_the_verdict_retrains(
    label_studio: LabelStudioServer, ls_client: LabelStudio, moderation_tagloop: TagloopServer
) -> None:
    client, tagloop = ls_client, moderation_tagloop
    project = moderation_project(client, tagloop, "tagloop moderation")
    pid, version = project.pid, project.version
    flagged_task, text = most_surely_flagged(client, tagloop, project, "neither")  # a safe tweet it flags

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
    assert retrained["name"] != version and retrained["n_train"] == project.n_labeled + 1
    item = requests.get(
        f"{tagloop.url}/api/projects/{pid}/review?queue=false_positive&state=resolved", timeout=10
    ).json()["items"][0]
    assert (item["verdict"], item["task_id"], item["ls_task_id"]) == (["Safe"], flagged_task, review_task.id)
    for tier in ("setfit", "transformer"):  # the slow tiers, asked for through the API
        answer = requests.post(f"{tagloop.url}/api/projects/{pid}/train", params={"tier": tier}, timeout=30)
        assert answer.status_code == 202, answer.text
        wait_until(
            lambda t=tier: (j := status(tagloop, pid)["training"][t]) is not None and j["state"] == "done",
            300,
            what=f"the {tier} job to finish",
        )
    jobs = wait_until(  # the pushes of those versions, and any periodic review scan, finish too
        lambda: (
            (j := status(tagloop, pid)["training"])
            and all((j[k.value] or {}).get("state") == "done" for k in JobKind)
            and j
        ),
        120,
        what="the latest job of every kind done",
    )
    assert {k.value for k in JobKind} <= set(jobs)
    for queue in review(tagloop, pid)["queues"].values():
        if queue["label_studio_project"]:
            client.projects.delete(id=queue["label_studio_project"])
    client.projects.delete(id=pid)
