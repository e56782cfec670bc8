"""tagloop against a real Label Studio 1.23: connect, pre-annotate, learn from labels, serve a new version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio

from tests.conftest import config_xml, read_rows, split_labels
from tools.harness import LabelStudioServer, TagloopServer, wait_until
from tools.labelstudio_project import choices_result

N_TASKS = 20
N_LABELED = 16


@pytest.fixture
def tagloop(tmp_path: Path) -> Iterator[TagloopServer]:
    env = {
        "TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"),
        "TAGLOOP_TRAIN_EVERY": "0",  # slow tier only when Label Studio asks (START_TRAINING); fast tier stays on
        "TAGLOOP_PROMOTION_TOLERANCE": "1",  # always promote, so the served version is predictable
        "TAGLOOP_SETFIT_MAX_STEPS": "8",
        "TAGLOOP_SETFIT_BATCH_SIZE": "8",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server


def status(tagloop: TagloopServer, project: int) -> dict[str, Any]:
    return requests.get(f"{tagloop.url}/api/projects/{project}", timeout=10).json()


def predictions(client: LabelStudio, task_id: int) -> list[dict[str, Any]]:
    """Open a task through the API (as the labeling page does): LS calls /predict if it has no prediction."""
    items = client.tasks.get(id=str(task_id)).predictions or []
    return [p.model_dump() if hasattr(p, "model_dump") else dict(p) for p in items]


def run_loop(
    client: LabelStudio, tagloop: TagloopServer, config: str, control: str, rows: list[dict[str, str]], multi: bool
) -> None:
    spec_labels = {
        "news_topics": {"World", "Sports", "Business", "Sci/Tech"},
        "toxicity_types": {"toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"},
    }[config]
    project = client.projects.create(title=f"tagloop e2e {config}", label_config=config_xml(config))
    pid = project.id
    imported = client.projects.import_tasks(
        id=pid, request=[{"text": r["text"]} for r in rows[:-2]], return_task_ids=True
    )
    task_ids = list(imported.task_ids)
    assert len(task_ids) == N_TASKS - 2
    backend = client.ml.create(project=pid, url=tagloop.url, title="tagloop")
    assert backend.state == "CO", backend
    # tasks imported after connecting reach tagloop as TASKS_CREATED webhooks
    late = client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in rows[-2:]], return_task_ids=True)
    task_ids += list(late.task_ids)

    zero_shot = status(tagloop, pid)["model_version"]
    assert zero_shot == f"{pid}-zeroshot-{zero_shot.rsplit('-', 1)[1]}"
    (pred,) = predictions(client, task_ids[-1])
    assert pred["model_version"] == zero_shot
    assert 0.0 <= pred["score"] <= 1.0
    (item,) = pred["result"]
    assert item["from_name"] == control and item["type"] == "choices"
    assert set(item["value"]["choices"]) <= spec_labels
    if not multi:
        assert len(item["value"]["choices"]) == 1

    for task_id, row in zip(task_ids[:N_LABELED], rows[:N_LABELED], strict=True):
        labels = split_labels(row["label"]) if multi else [row["label"]]
        client.annotations.create(
            id=task_id,
            result=choices_result(control, "text", labels),
        )
    wait_until(lambda: status(tagloop, pid)["labels_usable"] == N_LABELED, 30, what="webhooks to arrive")
    # the fast tier learned from the labels as they came (heads refit on cached embeddings)
    fast = wait_until(
        lambda: (s := status(tagloop, pid))["current"] and s["current"]["n_train"] == N_LABELED and s["model_version"],
        60,
        what="a fast-tier version trained on every label",
    )
    assert fast.startswith(f"{pid}-fast-")

    client.ml.train(id=backend.id)  # LS sends START_TRAINING to /webhook
    trained = f"{pid}-setfit-1"
    wait_until(lambda: status(tagloop, pid)["model_version"] == trained, 300, what=f"{trained} to serve")
    current = status(tagloop, pid)["current"]
    assert current["n_train"] == N_LABELED
    # tagloop told Label Studio about the new version (with the token LS gave in /setup)
    wait_until(lambda: client.projects.get(id=pid).model_version == trained, 30, what="LS model_version")

    # the new version's predictions were pushed for the unlabeled tasks tagloop knows: the one opened above
    # and the two that arrived by TASKS_CREATED, none of which anybody opened since; a task an annotator may have
    # open (protected: the head of an earlier push) keeps its predictions, and gets the new one only in the head
    protected = set(requests.get(f"{tagloop.url}/api/projects/{pid}/queue", timeout=10).json()["protected"])
    fresh = []
    for task_id in (task_ids[-1], task_ids[-2], task_ids[N_LABELED]):  # the last: never opened nor labeled
        preds = predictions(client, task_id)
        versions = [p["model_version"] for p in preds]
        if task_id not in protected:
            assert versions == [trained], (task_id, versions)
        assert versions.count(trained) <= 1 and all(v.startswith(f"{pid}-") for v in versions), versions
        fresh += [p for p in preds if p["model_version"] == trained]
    assert fresh, f"no task carries {trained}'s prediction (protected: {protected})"
    for pred in fresh:
        assert 0.0 <= pred["score"] <= 1.0 and set(pred["result"][0]["value"]["choices"]) <= spec_labels
    client.projects.delete(id=pid)


def test_news_topics_on_ag_news(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer
) -> None:
    run_loop(ls_client, tagloop, "news_topics", "topic", read_rows("ag_news", N_TASKS), multi=False)


def test_toxicity_types_on_jigsaw(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer
) -> None:
    rows = read_rows("jigsaw_toxic", 200)
    toxic = [r for r in rows if r["label"]][:10]
    clean = [r for r in rows if not r["label"]][:10]
    mixed = [row for pair in zip(toxic, clean, strict=True) for row in pair]  # both kinds among the labeled 16
    run_loop(ls_client, tagloop, "toxicity_types", "toxicity", mixed, multi=True)


def test_catch_up_reads_missed_annotations(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer
) -> None:
    """Annotations made before tagloop was connected, and while it was down, are read back from the API."""
    client = ls_client
    rows = read_rows("ag_news", 12, offset=3000)
    pid = client.projects.create(title="tagloop catch-up", label_config=config_xml("news_topics")).id
    ids = list(
        client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in rows], return_task_ids=True).task_ids
    )

    def annotate(task_id: int, label: str) -> int:
        return client.annotations.create(id=task_id, result=choices_result("topic", "text", [label])).id

    before = [annotate(t, r["label"]) for t, r in zip(ids[:6], rows[:6], strict=True)]
    client.ml.create(project=pid, url=tagloop.url, title="tagloop")  # /setup queues a catch-up
    wait_until(lambda: status(tagloop, pid)["labels_usable"] == 6, 60, what="catch-up after connecting")

    tagloop.stop()
    after = [annotate(t, r["label"]) for t, r in zip(ids[6:9], rows[6:9], strict=True)]
    client.annotations.update(
        id=before[0],
        result=choices_result("topic", "text", ["Sports"]),
    )
    client.annotations.delete(id=before[1])
    tagloop.start()  # start-up queues a catch-up of every project with a Label Studio address
    wait_until(lambda: status(tagloop, pid)["labels_usable"] == 8, 60, what="catch-up after a restart")
    seen = status(tagloop, pid)["labels_seen"]
    assert seen == 9 and len(after) == 3  # the deleted one is kept, marked deleted
    client.projects.delete(id=pid)
