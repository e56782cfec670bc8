"""What the moderation end-to-end tests share: a davidson_hate project in Label Studio with a trained tagloop
version, and the tweet of a given kind that this version flags most surely."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from label_studio_sdk import LabelStudio

from tests.conftest import config_xml, read_rows
from tools.harness import TagloopServer, wait_until
from tools.labelstudio_project import choices_result

DAVIDSON = {"hate_speech": "Violating", "offensive_language": "Potentially Harmful", "neither": "Safe"}
HARMFUL = ("Potentially Harmful", "Violating")
TAGLOOP_ENV = {
    "TAGLOOP_TRAIN_EVERY": "0",  # fast tier only: heads refit on cached embeddings
    "TAGLOOP_PROMOTION_TOLERANCE": "1",
    "TAGLOOP_SERVE_PRECISION": "torch",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
"""Settings of the tagloop server these tests start (plus its data dir)."""


def choices(labels: list[str]) -> list[dict[str, Any]]:
    """An annotation result of the moderation config."""
    return choices_result("moderation", "text", labels)


def tagloop_api(tagloop: TagloopServer, pid: int, path: str, **params: str) -> Any:
    """``GET /api/projects/<pid><path>`` of the tagloop server."""
    return requests.get(f"{tagloop.url}/api/projects/{pid}{path}", params=params, timeout=30).json()


@dataclass(frozen=True)
class ModerationProject:
    """A Label Studio project with 32 labeled tweets and an unlabeled slice of 80, served by ``version``."""

    pid: int
    task_ids: list[int]
    pool: list[dict[str, str]]
    n_labeled: int
    version: str


def moderation_project(client: LabelStudio, tagloop: TagloopServer, title: str) -> ModerationProject:
    """Create the project with its labels imported before tagloop is connected (the catch-up on /setup reads
    them and one fast-tier version follows), connect tagloop and wait until that version is pushed to LS."""
    rows = read_rows("davidson_hate", 400)
    by = {k: [r for r in rows[80:] if r["label"] == k] for k in DAVIDSON}
    labeled = by["neither"][:10] + by["offensive_language"][:14] + by["hate_speech"][:8]
    pool = rows[:80]  # a natural slice: ~80% offensive, some safe tweets among them
    pid = client.projects.create(title=title, label_config=config_xml("content_moderation")).id
    assert pid is not None
    imported: Any = [
        {"data": {"text": r["text"]}, "annotations": [{"result": choices([DAVIDSON[r["label"]]])}]} for r in labeled
    ]
    client.projects.import_tasks(id=pid, request=imported)
    ids = client.projects.import_tasks(id=pid, request=[{"text": r["text"]} for r in pool], return_task_ids=True)
    client.ml.create(project=pid, url=tagloop.url, title="tagloop")
    version = wait_until(
        lambda: (
            (s := tagloop_api(tagloop, pid, "/status"))["current"]
            and s["current"]["n_train"] == len(labeled)
            and s["model_version"]
        ),
        120,
        what="a fast-tier version trained on the imported labels",
    )
    wait_until(lambda: client.projects.get(id=pid).model_version == version, 60, what="its predictions pushed to LS")
    return ModerationProject(pid, list(ids.task_ids or []), pool, len(labeled), str(version))


def most_surely_flagged(
    client: LabelStudio, tagloop: TagloopServer, project: ModerationProject, kind: str
) -> tuple[int, str]:
    """The task and text of the ``kind`` (davidson label) tweet that the version flags most surely, as Label
    Studio shows its prediction."""
    thresholds = tagloop_api(tagloop, project.pid, "/review")["thresholds_in_force"]
    best: tuple[float, int, str] | None = None
    for task_id, row in zip(project.task_ids, project.pool, strict=True):
        if row["label"] != kind:
            continue
        preds = [p.model_dump() for p in client.tasks.get(id=str(task_id)).predictions or []]
        current = [p for p in preds if p["model_version"] == project.version]
        if not current:
            continue
        probs = current[0]["result"][0]["meta"]["probabilities"]
        margin = max(probs[h] - thresholds.get(h, 0.5) for h in HARMFUL)
        if margin >= 0 and (best is None or margin > best[0]):
            best = (margin, task_id, row["text"])
    assert best is not None, f"the version flags none of the {kind} tweets"
    return best[1], best[2]
