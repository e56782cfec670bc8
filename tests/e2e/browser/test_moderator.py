"""A moderator in a real browser works tagloop's false-positive review project in Label Studio: a version flags a
davidson_hate tweet, an annotator marks it "Safe" (a mistake: the tweet is offensive), the item appears in the
review project, the moderator opens it, sees the text, the model's label, score, version and why it is there,
clicks the verdict and submits. Asserted: the item leaves the queue, and the next version was trained with the
moderator's label and predicts it for that text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from label_studio_sdk import LabelStudio

from tests.conftest import config_xml
from tests.e2e.browser.chromium import Chromium
from tests.e2e.browser.label_studio_ui import LabelStudioUI
from tests.e2e.moderation import choices, moderation_project, most_surely_flagged
from tools.harness import LabelStudioServer, TagloopServer, wait_until

pytestmark = pytest.mark.browser

VERDICT = "Potentially Harmful"


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
    label_studio: LabelStudioServer,
    ls_client: LabelStudio,
    moderation_tagloop: TagloopServer,
    chromium: Chromium,
    artifacts: Path,
) -> None:
    started = time.monotonic()
    client, tagloop = ls_client, moderation_tagloop
    project = moderation_project(client, tagloop, "tagloop browser: moderation")
    pid, version = project.pid, project.version
    api = Tagloop(tagloop, pid)
    flagged_task, text = most_surely_flagged(client, tagloop, project, "offensive_language")  # flagged: rightly

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
        lambda: (c := api.get("/status")["current"]) and c["n_train"] == project.n_labeled + 1 and c["name"],
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
    assert after["n_train"] == project.n_labeled + 1  # the moderator's label replaced the annotator's for that text
    assert after_choice == [VERDICT], f"{after['name']} predicts {after_choice} for the text the moderator judged"
