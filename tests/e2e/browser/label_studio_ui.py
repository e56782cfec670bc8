"""What a person does in Label Studio 1.23's web UI, as ``driver.mjs`` commands (selectors seen in 1.23.2)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.browser.chromium import Chromium

SUBMIT = "button[data-testid=bottombar-submit-button]"
CHOICE_INPUT = "input.ant-checkbox-input"
PREDICTION_TAB = ".lsf-annotation-button"
SHOWS_TASK = """id => {
  const shown = document.querySelector('.lsf-current-task__task-id');
  return shown !== null && shown.firstChild !== null && shown.firstChild.textContent.trim() === String(id);
}"""  # the task id at the bottom left of the labeling page ("#33", the "#" is CSS)


@dataclass(frozen=True)
class ServedTask:
    """A task the labeling stream shows, from the ``next_task`` response the page received."""

    id: int
    text: str
    predictions: list[dict[str, Any]]

    def prediction(self, model_version: str) -> dict[str, Any] | None:
        """The prediction of ``model_version``, if the task carries one."""
        return next((p for p in self.predictions if p["model_version"] == model_version), None)


class SubmitRejected(Exception):
    """Label Studio answered the annotation POST of a submit with an error (the page shows "not saved")."""

    def __init__(self, task_id: int, status: int, body: Any) -> None:
        super().__init__(f"task {task_id}: the annotation was refused with {status}: {body}")
        self.task_id, self.status, self.body = task_id, status, body


@dataclass(frozen=True)
class PredictionTab:
    """A prediction as the task view shows it: the tab's (possibly shortened) model version, age and score."""

    name: str
    info: str


def shown_version(model_version: str) -> str:
    """How Label Studio 1.23 writes a model version on a prediction tab (middle elided past 15 characters)."""
    return model_version if len(model_version) <= 15 else f"{model_version[:8]}...{model_version[-6:]}"


class LabelStudioUI:
    """One person's browser session in Label Studio."""

    def __init__(self, browser: Chromium, url: str, shots: Path) -> None:
        self.browser, self.url, self.shots = browser, url, shots
        self.shots.mkdir(parents=True, exist_ok=True)

    def screenshot(self, name: str, page: str = "main") -> Path:
        """Save ``<shots>/<name>.png``."""
        return Path(self.browser.call("screenshot", page=page, path=str(self.shots / f"{name}.png")))

    def log_in(self, email: str, password: str) -> None:
        """Fill and send the login form; returns once the browser left the login page."""
        b = self.browser
        b.call("goto", url=f"{self.url}/user/login/")
        b.call("fill", selector="input[name=email]", value=email)
        b.call("fill", selector="input[name=password]", value=password)
        b.call("click", selector="button[type=submit], input[type=submit]")
        b.call("waitForUrl", pattern=r"^(?!.*/user/login)", timeoutMs=60000)  # the home page

    def open_data_manager(self, project: int) -> None:
        """The project's task list."""
        self.browser.call("goto", url=f"{self.url}/projects/{project}/data")
        self.browser.call("waitFor", selector="button", hasText="Label All Tasks", timeoutMs=60000)

    def label_all_tasks(self) -> ServedTask:
        """Click *Label All Tasks*: the labeling stream opens on the task Label Studio's queue serves."""
        self.browser.new_responses()
        self.browser.call("click", selector="button", hasText="Label All Tasks")
        return self.wait_for_next_task(previous=None)

    def wait_for_next_task(self, previous: int | None, timeout: float = 60.0) -> ServedTask:
        """The task the stream loaded after ``previous`` (from its ``next_task`` response), once it is on screen.

        Raises ``SubmitRejected`` if Label Studio refused to save the annotation of ``previous`` instead."""
        deadline, seen = time.monotonic() + timeout, []
        while True:
            seen += self.browser.new_responses()
            for r in seen:
                if r["method"] == "POST" and f"/api/tasks/{previous}/annotations" in r["url"] and r["status"] >= 400:
                    raise SubmitRejected(previous or 0, r["status"], r["body"])
            served = [
                r["body"]
                for r in seen
                if "next_task" in r["url"] and r["status"] == 200 and r["body"].get("id") not in (None, previous)
            ]
            if served:
                body = served[-1]
                task = ServedTask(int(body["id"]), body["data"]["text"], list(body.get("predictions") or []))
                self.browser.call("waitForFunction", expression=SHOWS_TASK, arg=task.id)
                self.browser.call("waitFor", selector=CHOICE_INPUT, state="attached")
                return task
            if time.monotonic() > deadline:
                calls = [f"{r['method']} {r['url']} {r['status']} {str(r['body'])[:300]}" for r in seen]
                raise TimeoutError(f"the stream served no task after {previous} in {timeout:.0f} s; seen: {calls}")
            time.sleep(0.2)

    def checked_choices(self) -> list[str]:
        """Names of the checked choices on the labeling page (the pre-filled prediction, until someone clicks)."""
        names = []
        for i in range(self.browser.call("count", selector=f"{CHOICE_INPUT}:checked")):
            names.append(self.browser.call("attribute", selector=f"{CHOICE_INPUT}:checked", nth=i, name="name"))
        return names

    def choose(self, label: str) -> None:
        """Make ``label`` the one checked choice (single-choice control): click it unless it is pre-filled."""
        if self.checked_choices() != [label]:
            self.browser.call("click", selector="label.lsf-choice__checkbox", hasText=label)
        if self.checked_choices() != [label]:
            raise AssertionError(f"clicked {label!r} but the page shows {self.checked_choices()} checked")

    def submit(self, task: ServedTask) -> ServedTask:
        """Click *Submit*; returns the next task the stream serves (``SubmitRejected`` if the save failed)."""
        self.browser.call("click", selector=SUBMIT)
        return self.wait_for_next_task(previous=task.id)

    def submit_last(self, task: ServedTask, timeout: float = 60.0) -> dict[str, Any]:
        """Click *Submit* on the last task of a stream; returns the annotation Label Studio saved (its POST's
        answer), ``SubmitRejected`` if it refused it."""
        self.browser.call("click", selector=SUBMIT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.browser.new_responses():
                if r["method"] == "POST" and f"/api/tasks/{task.id}/annotations" in r["url"]:
                    if r["status"] >= 400:
                        raise SubmitRejected(task.id, r["status"], r["body"])
                    return dict(r["body"])
            time.sleep(0.2)
        raise TimeoutError(f"no answer to the annotation POST of task {task.id} within {timeout:.0f} s")

    def open_task(self, project: int, task_id: int, page: str = "task") -> list[PredictionTab]:
        """Open a task in the Data Manager (in a second tab): its predictions appear as tabs, newest first."""
        self.browser.call("open", page=page)
        self.browser.call("goto", page=page, url=f"{self.url}/projects/{project}/data?tab=1&task={task_id}")
        self.browser.call("waitFor", page=page, selector=f"{PREDICTION_TAB}__name", timeoutMs=60000)
        self.browser.call("waitFor", page=page, selector=CHOICE_INPUT, state="attached")
        names = self.browser.call("texts", page=page, selector=f"{PREDICTION_TAB}__name")
        infos = self.browser.call("texts", page=page, selector=f"{PREDICTION_TAB}__info")
        tabs = [PredictionTab(n, i) for n, i in zip(names, infos, strict=True)]
        return [t for t in tabs if "@" not in t.name]  # annotations are named by their author's email
