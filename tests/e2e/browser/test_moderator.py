"""A moderator in a real browser works tagloop's false-positive review project in Label Studio: a version flags a
davidson_hate tweet, an annotator marks it "Safe" (a mistake: the tweet is offensive), the item appears in the
review project, the moderator opens it, sees the text, the model's label, score, version and why it is there,
clicks the verdict and submits. Asserted: the item leaves the queue, and the next version was trained with the
moderator's label and predicts it for that text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio

from tests.conftest import config_xml, read_rows
from tests.e2e.browser.chromium import Chromium
from tests.e2e.browser.label_studio_ui import LabelStudioUI
from tests.e2e.harness import LabelStudioServer, TagloopServer, wait_until

pytestmark = pytest.mark.browser

DAVIDSON = {"hate_speech": "Violating", "offensive_language": "Potentially Harmful", "neither": "Safe"}
HARMFUL = ("Potentially Harmful", "Violating")
VERDICT = "Potentially Harmful"


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


class Tagloop:
    """tagloop's view of the moderation project, through its API."""

    def __init__(self, server: TagloopServer, project: int) -> None:
        self.url, self.project = server.url, project

    def get(self, path: str, **params: str) -> Any:
        return requests.get(f"{self.url}/api/projects/{self.project}{path}", params=params, timeout=30).json()

    def predict(self, text: str) -> tuple[list[str], str]:
        """The served version's choice for ``text`` (no task id: nothing is added to the pool), and the version."""
        body = {"tasks": [{"data": {"text": text}}], "project": str(self.project), "label_config": config_xml(
            "content_moderation")}  # fmt: skip
        (result,) = requests.post(f"{self.url}/predict", json=body, timeout=60).json()["results"]
        return list(result["result"][0]["value"]["choices"]), str(result["model_version"])


def test_moderator_verdict_in_the_review_project_retrains(
    label_studio: LabelStudioServer, ls_client: LabelStudio, tagloop: TagloopServer, chromium: Chromium, artifacts: Path
) -> None:
    started = time.monotonic()
    client = ls_client
    rows = read_rows("davidson_hate", 400)
    by = {k: [r for r in rows[80:] if r["label"] == k] for k in DAVIDSON}
    labeled = by["neither"][:10] + by["offensive_language"][:14] + by["hate_speech"][:8]
    pool = rows[:80]
    pid = client.projects.create(title="tagloop browser: moderation", label_config=config_xml("content_moderation")).id
    assert pid is not None
    imported: Any = [
        {"data": {"text": r["text"]}, "annotations": [{"result": choices([DAVIDSON[r["label"]]])}]} for r in labeled
    ]
    client.projects.import_tasks(id=pid, request=imported)
    ids = list(
        client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in pool], return_task_ids=True).task_ids
        or []
    )
    client.ml.create(project=pid, url=tagloop.url, title="tagloop")
    api = Tagloop(tagloop, pid)
    version = wait_until(
        lambda: (s := api.get("/status"))["current"] and s["current"]["n_train"] == len(labeled) and s["model_version"],
        120,
        what="a fast-tier version trained on the imported labels",
    )
    wait_until(lambda: client.projects.get(id=pid).model_version == version, 60, what="its predictions pushed to LS")

    # an offensive tweet the version flags most surely, as Label Studio shows its prediction
    thresholds = api.get("/review")["thresholds_in_force"]
    best: tuple[float, int, str] | None = None
    for task_id, row in zip(ids, pool, strict=True):
        if row["label"] != "offensive_language":
            continue
        preds = [p.model_dump() for p in client.tasks.get(id=str(task_id)).predictions or []]
        current = [p for p in preds if p["model_version"] == version]
        if not current:
            continue
        probs = current[0]["result"][0]["meta"]["probabilities"]
        margin = max(probs[h] - thresholds.get(h, 0.5) for h in HARMFUL)
        if margin >= 0 and (best is None or margin > best[0]):
            best = (margin, task_id, row["text"])
    assert best is not None, "the version flags none of the offensive tweets"
    _, flagged_task, text = best

    client.annotations.create(id=flagged_task, result=choices(["Safe"]))  # the annotator's mistake
    fp_project = wait_until(
        lambda: api.get("/review")["queues"]["false_positive"]["label_studio_project"],
        90,
        what="the false-positive review project in Label Studio",
    )
    wait_until(
        lambda: [t for t in client.tasks.list(project=fp_project, fields="all") if (t.data or {})["text"] == text],
        90,
        what="the overturned flag as a task of the review project",
    )
    before = wait_until(
        lambda: (c := api.get("/status")["current"]) and c["n_train"] == len(labeled) + 1 and c["name"],
        90,
        what="a version trained with the annotator's label",
    )
    before_choice, before_version = api.predict(text)
    assert before_version == before

    # the moderator, in the browser
    ui = LabelStudioUI(chromium, label_studio.url, artifacts)
    ui.log_in(label_studio.username, label_studio.password)
    ui.open_data_manager(int(fp_project))
    ui.screenshot("01-review-project-data-manager")
    task = ui.label_all_tasks()
    assert task.text == text, "the review stream did not serve the overturned flag first"
    shown = " ".join(chromium.call("texts", selector="body"))
    for field in (version, "human said ['Safe']"):
        assert field in shown, f"{field!r} is not on the review page: {shown[:1000]}"
    assert ui.checked_choices() == [], "the review task came pre-filled; the moderator must decide"
    ui.screenshot("02-review-task")
    ui.choose(VERDICT)
    ui.screenshot("03-verdict-chosen")
    saved = ui.submit_last(task)
    assert saved["result"][0]["value"]["choices"] == [VERDICT]
    ui.screenshot("04-verdict-submitted")

    wait_until(
        lambda: (q := api.get("/review")["queues"]["false_positive"])["open"] == 0 and q["resolved"] >= 1,
        60,
        what="the verdict to close the item",
    )
    after = wait_until(
        lambda: (c := api.get("/status")["current"]) and c["metrics"]["review"].get("moderator_labels") == 1 and c,
        120,
        what="a new version trained with the moderator's label",
    )
    after_choice, after_version = api.predict(text)
    (item,) = [
        i for i in api.get("/review", queue="false_positive", state="resolved")["items"] if i["task_id"] == flagged_task
    ]
    print(
        f"\nflagged by {version}; annotator said Safe -> {before}: {before_choice}; moderator said {VERDICT} -> "
        f"{after['name']}: {after_choice}; {time.monotonic() - started:.0f} s"
    )
    assert item["verdict"] == [VERDICT] and item["ls_task_id"] == task.id
    assert after["name"] not in (version, before) and after_version == after["name"]
    assert after["n_train"] == len(labeled) + 1  # the moderator's label replaced the annotator's for that text
    assert after_choice == [VERDICT], f"{after['name']} predicts {after_choice} for the text the moderator judged"
