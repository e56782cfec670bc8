"""The fast tier (heads on cached embeddings) and the slow tier's promotion guard, with the real model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backend.app import create_app
from backend.bootstrap import build
from backend.training.evaluation import fresh_fold_accuracy
from backend.training.jobs import mean_cv_accuracy, train_project
from tests.backend.test_api_labelstudio import annotation_event, setup_project
from tests.conftest import config_xml, read_rows

pytestmark = pytest.mark.model
NEWS = config_xml("news_topics")


@pytest.fixture
def fast_services(settings: Any, encoder: Any) -> Any:
    built = build(settings.replace(fast_tier=True, promotion_tolerance=0.0), base_encoder=encoder)
    yield built
    built.close()


def label(client: Any, project: int, rows: list[dict[str, str]], start: int) -> list[Any]:
    return [
        client.post(
            "/webhook", json=annotation_event(project, NEWS, start + i, start + i, r["text"], "topic", [r["label"]])
        ).json
        for i, r in enumerate(rows)
    ]


def test_every_label_queues_a_fast_version_on_cached_embeddings(fast_services: Any) -> None:
    client = create_app(services=fast_services).test_client()
    setup_project(client, 21, NEWS)
    rows = read_rows("ag_news", 12, offset=500)
    answers = label(client, 21, rows[:8], 100)
    assert [a["training"] for a in answers[:3]] == [None] * 3  # below min_labels_to_train
    assert all(a["training"]["fast"] in ("queued", "already_queued") for a in answers[3:])
    assert fast_services.wait_idle(120)
    first = client.get("/api/projects/21").json
    assert first["model_version"].startswith("21-fast-") and first["current"]["n_train"] == 8
    assert first["current"]["train_seconds"] < 5  # heads only, on cached embeddings
    label(client, 21, rows[8:], 200)
    assert fast_services.wait_idle(120)
    later = client.get("/api/projects/21").json
    assert later["current"]["n_train"] == 12 and later["model_version"] != first["model_version"]
    # the fast tier shares the base body: its embeddings are in the store, one row per text
    with fast_services.store.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM embeddings")).scalar() >= 12
    r = client.post("/predict", json={"tasks": [{"id": 1, "data": {"text": rows[0]["text"]}}], "project": 21})
    assert r.json["model_version"] == later["model_version"]


def test_slow_version_worse_than_served_body_is_kept_not_served(fast_services: Any) -> None:
    client = create_app(services=fast_services).test_client()
    setup_project(client, 22, NEWS)
    rows = read_rows("ag_news", 16, offset=700)
    label(client, 22, rows, 300)
    assert fast_services.wait_idle(120)
    served = client.get("/api/projects/22").json["model_version"]
    # a promotion tolerance of 0 and a body "trained" with zero steps cannot beat the served body by luck alone
    version = train_project(fast_services, 22, "setfit")
    record = fast_services.store.versions.get(version)
    guard = record.metrics["promotion"]
    if record.status == "rejected":
        assert guard["cv_accuracy"] < guard["served_cv_accuracy"]
        assert client.get("/api/projects/22").json["model_version"] == served
    else:
        assert guard["cv_accuracy"] >= guard["served_cv_accuracy"]
        assert client.get("/api/projects/22").json["model_version"] == version


def test_setfit_version_is_judged_on_the_labels_that_arrived_while_it_trained(fast_services: Any) -> None:
    """Labels submitted during a SetFit training are the guard's test set: both bodies are scored on them (heads on
    the training labels plus the other folds of the fresh rows) and the verdict follows those scores."""
    client = create_app(services=fast_services).test_client()
    setup_project(client, 23, NEWS)
    rows = read_rows("ag_news", 40, offset=900)
    label(client, 23, rows[:16], 400)
    assert fast_services.wait_idle(120)
    fresh = rows[16:]
    arrived: list[Any] = []

    def progress(share: float, message: str) -> None:  # annotators keep labeling while the body trains
        if not arrived:
            arrived.extend(label(client, 23, fresh, 500))

    version = train_project(fast_services, 23, "setfit", progress=progress)
    record = fast_services.store.versions.get(version)
    guard = record.metrics["promotion"]
    assert guard["fresh_labels"] == len(fresh) and "served_cv_accuracy" not in guard
    assert 0.25 < guard["served_fresh_accuracy"] <= 1 and 0.25 < guard["fresh_accuracy"] <= 1  # four topics
    promoted = guard["fresh_accuracy"] >= guard["served_fresh_accuracy"] - guard["tolerance"]
    assert record.status == ("ready" if promoted else "rejected")
    # with no label arriving during the training, the guard falls back to cross-validation
    again = fast_services.store.versions.get(train_project(fast_services, 23, "setfit")).metrics["promotion"]
    assert again["fresh_labels"] == 0 and "served_cv_accuracy" in again


def test_fresh_fold_accuracy_scores_every_fresh_row_once_with_heads_that_never_saw_it(encoder: Any) -> None:
    """A real body separates ag_news topics on rows it scores out of fold; the same rows as random vectors do not."""
    rows = read_rows("ag_news", 100, offset=1200)
    labels = tuple(sorted({r["label"] for r in rows}))
    targets = [[r["label"]] for r in rows]
    emb = encoder.encode([r["text"] for r in rows])
    real = fresh_fold_accuracy(labels, (emb[:20], targets[:20]), (emb[20:], targets[20:]), seed=0)
    noise = np.random.default_rng(0).normal(size=emb.shape)
    random = fresh_fold_accuracy(labels, (noise[:20], targets[:20]), (noise[20:], targets[20:]), seed=0)
    assert real > 0.75 and random < 0.5 and real * 80 == round(real * 80)  # 80 rows, each counted once


def test_mean_cv_accuracy() -> None:
    assert mean_cv_accuracy({"a": {"cv_accuracy": 0.5}, "b": {"cv_accuracy": 1.0}, "c": {"n": 3}}) == 0.75
    assert mean_cv_accuracy({"a": {"n": 3}}) is None


def test_steps_are_planned_with_the_fastest_recent_step_time_capped() -> None:
    from backend.training.jobs import MAX_PLANNED_SECONDS_PER_STEP, planning_seconds_per_step
    from backend.training.setfit_training import DEFAULT_SECONDS_PER_STEP

    assert planning_seconds_per_step([]) == DEFAULT_SECONDS_PER_STEP  # no version measured yet
    assert planning_seconds_per_step([0.0]) == DEFAULT_SECONDS_PER_STEP  # no step made (one distinct label)
    assert planning_seconds_per_step([1.4, 2.0, 1.1]) == 1.1
    assert planning_seconds_per_step([0.2]) == 0.2  # a GPU: many steps fit the budget
    assert planning_seconds_per_step([8.8]) == MAX_PLANNED_SECONDS_PER_STEP  # one step slowed by contention
