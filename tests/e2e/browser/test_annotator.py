"""An annotator in a real browser: logs in, opens the labeling stream, sees tagloop's pre-filled choice and model
version, labels a few dozen ag_news tasks by clicking. Asserted: the version shown changes as tagloop trains, the
stream serves tagloop's top-ranked task, and accuracy on a held-back slice rises from the zero-shot version."""

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
from tests.e2e.browser.label_studio_ui import LabelStudioUI, ServedTask, SubmitRejected, shown_version
from tools.harness import LabelStudioServer, TagloopServer, wait_until
from tools.labelstudio_project import set_up_project, wait_for_queue

pytestmark = pytest.mark.browser

N_POOL = 60
N_LABELS = 24
CHECK_EVERY = 5  # before every 5th label: wait until tagloop is idle, then check the task served next
N_HELD_OUT = 150


@pytest.fixture
def tagloop(tmp_path: Path) -> Iterator[TagloopServer]:
    env = {
        "TAGLOOP_DATA_DIR": str(tmp_path / "tagloop"),
        "TAGLOOP_FAST_TIER": "true",  # heads refit after every label
        "TAGLOOP_TRAIN_EVERY": "0",  # no SetFit body fine-tuning: it would only slow the browser on 2 cores
        "TAGLOOP_PUSH_TOP_K": "20",
        # margin from the first label, as this test was built: with the default 20-task random warm-up, 24 labels
        # raise these 150 held-out rows by 0.02 only (0.72 → 0.74, twice in a row), below the +0.03 asserted
        "TAGLOOP_WARMUP_LABELS": "0",
        "TAGLOOP_SERVE_PRECISION": "torch",  # no ONNX export of each new body
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with TagloopServer(env, log_path=tmp_path / "tagloop.log") as server:
        yield server


class Loop:
    """tagloop's and Label Studio's view of the project, through their APIs."""

    def __init__(self, tagloop: TagloopServer, ls: LabelStudio, project: int) -> None:
        self.tagloop, self.ls, self.project = tagloop, ls, project

    def get(self, path: str) -> Any:
        return requests.get(f"{self.tagloop.url}/api/projects/{self.project}{path}", timeout=30).json()

    def settled(self, n_labels: int) -> dict[str, Any]:
        """Wait until tagloop has every label, is idle, and Label Studio serves the version whose queue it pushed."""

        def idle() -> dict[str, Any] | None:
            status, queue = self.get("/status"), self.get("/queue")
            trained = status["current"]["n_train"] if status["current"] else 0
            if status["jobs"] or trained != n_labels or status["labels_usable"] != n_labels or not queue["tasks"]:
                return None
            return queue if self.ls.projects.get(id=self.project).model_version == queue["model_version"] else None

        return wait_until(idle, 240, 0.5, f"tagloop idle with {n_labels} labels and its queue in Label Studio")

    def held_out_accuracy(self, rows: list[dict[str, str]]) -> tuple[float, str]:
        """Accuracy of the served version on ``rows`` through ``/predict`` (tasks without ids: not added to the pool)."""
        body: dict[str, Any] = {
            "tasks": [{"data": {"text": r["text"]}} for r in rows],
            "project": str(self.project),
            "label_config": config_xml("news_topics"),
        }
        answer = requests.post(f"{self.tagloop.url}/predict", json=body, timeout=300).json()
        predicted = [res["result"][0]["value"]["choices"][0] for res in answer["results"]]
        correct = sum(p == r["label"] for p, r in zip(predicted, rows, strict=True))
        return correct / len(rows), answer["results"][0]["model_version"]


def first_unlabeled(queue: list[int], labeled: list[int]) -> int:
    return next(t for t in queue if t not in labeled)


def test_annotator_labels_in_the_stream_and_the_model_follows(
    label_studio: LabelStudioServer, tagloop: TagloopServer, chromium: Chromium, artifacts: Path
) -> None:
    started = time.monotonic()
    pool, held_out = read_rows("ag_news", N_POOL, offset=4500), read_rows("ag_news", N_HELD_OUT, offset=5000)
    truth = {r["text"]: r["label"] for r in pool}
    ls = label_studio.client()
    pid, _ = set_up_project(
        ls, tagloop, title="tagloop browser: annotator", label_config=config_xml("news_topics"),
        data=[{"text": r["text"]} for r in pool], strategy="",
    )  # fmt: skip
    project = wait_for_queue(ls, tagloop, pid)
    loop = Loop(tagloop, ls, pid)
    zero_shot_accuracy, zero_shot = loop.held_out_accuracy(held_out)
    assert zero_shot == project.model_version and "-zeroshot-" in zero_shot

    ui = LabelStudioUI(chromium, label_studio.url, artifacts)
    ui.log_in(label_studio.username, label_studio.password)
    ui.screenshot("01-projects")
    ui.open_data_manager(pid)
    ui.screenshot("02-data-manager")
    task = ui.label_all_tasks()
    assert task.id == project.queue[0], "the stream's first task is not tagloop's top-ranked one"
    assert check_prefilled(ui, task) == zero_shot
    ui.screenshot("03-stream-zero-shot")
    tabs = ui.open_task(pid, task.id)
    assert [t.name for t in tabs] == [shown_version(zero_shot)]
    ui.screenshot("04-task-view-zero-shot", page="task")

    labeled: list[int] = []
    versions_seen, queue_checks, problems = [zero_shot], 0, []
    curve: list[tuple[int, float, str]] = []  # (labels trained on, held-out accuracy, version)
    for i in range(1, N_LABELS + 1):
        queue = loop.settled(len(labeled)) if i % CHECK_EVERY == 0 else None  # tagloop catches up first
        ui.choose(truth[task.text])
        try:
            nxt = ui.submit(task)
        except SubmitRejected as refused:  # "Annotation is not saved": e.g. its pre-filled prediction was deleted
            ui.screenshot(f"problem-{i}-refused-submit")
            message = f"label {i}: Label Studio refused the submit of task {task.id}: {refused.body}"
            raise AssertionError(message) from refused
        labeled.append(task.id)
        task = nxt
        version = check_prefilled(ui, task)
        if version is None:
            problems.append(f"label {i}: the stream served task {task.id} without a prediction to pre-fill")
            ui.screenshot(f"problem-{len(problems)}-not-prefilled")
        elif version not in versions_seen:
            versions_seen.append(version)
        if queue is not None and version is not None:
            check_served_first(loop, queue, task, labeled)
            queue_checks += 1
            ui.screenshot(f"{i + 4:02d}-stream-after-{i}-labels")
            curve.append((len(labeled), *loop.held_out_accuracy(held_out)))  # labels submitted so far
    final_queue = loop.settled(N_LABELS)
    final = final_queue["model_version"]
    ui.screenshot(f"{N_LABELS + 5:02d}-stream-final")
    tabs = ui.open_task(pid, final_queue["tasks"][0])
    assert shown_version(final) in [t.name for t in tabs], (tabs, final)
    ui.screenshot(f"{N_LABELS + 6:02d}-task-view-final", page="task")
    final_accuracy, served = loop.held_out_accuracy(held_out)
    assert served == final

    curve.append((N_LABELS, final_accuracy, final))
    print(
        f"\nversions shown in the stream: {versions_seen}\nheld-out accuracy ({N_HELD_OUT} ag_news rows): zero-shot "
        f"{zero_shot} {zero_shot_accuracy:.3f}; by labels: {[(n, round(a, 3), v) for n, a, v in curve]}\n"
        f"queue checks {queue_checks}; problems {problems}; {time.monotonic() - started:.0f} s"
    )
    assert len(versions_seen) >= 3 and final != zero_shot, versions_seen  # the version shown changed as labels came
    assert queue_checks == N_LABELS // CHECK_EVERY
    # the served estimate blends the zero-shot prior with the heads: never clearly below it, above it at the end
    # (ag_news, 4 topics: 24 labels are worth about +0.05 on average; 0.03 is 4-5 of the 150 held-out rows)
    assert min(a for _, a, _ in curve) >= zero_shot_accuracy - 0.04, f"fell below zero-shot: {curve}"
    assert final_accuracy >= zero_shot_accuracy + 0.03, f"held-out accuracy did not rise above zero-shot: {curve}"
    assert not problems, f"what the annotator ran into (screenshots problem-*.png in {artifacts}): {problems}"


def check_prefilled(ui: LabelStudioUI, task: ServedTask) -> str | None:
    """The page shows the task pre-filled with its prediction's choice: returns that prediction's model version
    (None if the task came without a prediction of the project's current version)."""
    if not task.predictions:
        return None
    checked = ui.checked_choices()
    for prediction in task.predictions:
        if prediction["result"][0]["value"]["choices"] == checked:
            return str(prediction["model_version"])
    raise AssertionError(f"task {task.id}: page shows {checked} checked; its predictions: {task.predictions}")


def check_served_first(loop: Loop, queue: dict[str, Any], task: ServedTask, labeled: list[int]) -> None:
    """``task``, served right after a submit, is the first unlabeled task of tagloop's ranking: the one pushed
    before the submit or, if tagloop already pushed a newer version, that one's."""
    versions = {p["model_version"] for p in task.predictions}
    if queue["model_version"] in versions:
        expected = first_unlabeled(queue["tasks"], labeled)
    else:
        newer = loop.get("/queue")
        assert newer["model_version"] in versions, (versions, queue["model_version"], newer["model_version"])
        expected = first_unlabeled(newer["tasks"], labeled)
    assert task.id == expected, f"served task {task.id}, tagloop's top-ranked unlabeled task is {expected}"
