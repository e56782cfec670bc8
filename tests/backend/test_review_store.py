"""The review tables on both databases the store supports: SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from backend.store import AnnotationRecord, SqlStore
from backend.store.records import NewItem
from backend.store.review import DISMISSED, OPEN, RESOLVED


@pytest.fixture
def store(store: SqlStore) -> SqlStore:
    """The shared store fixture with project 1."""
    store.projects.upsert(1, "<View/>", "h")
    return store


def item(queue: str = "false_positive", *, task: int | None = 10, text: str = "you are trash", **kw: object) -> NewItem:
    return NewItem(
        project_id=1,
        queue=queue,
        control="moderation",
        value_key="text",
        text=text,
        source="webhook",
        predicted=("Violating",),
        human=("Safe",),
        task_id=task,
        **kw,  # type: ignore[arg-type]
    )


def test_migration_creates_the_review_tables(store: SqlStore) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"review_items", "review_projects", "moderator_labels", "served_scores"} <= tables
    store.migrate()  # idempotent


def test_one_open_item_per_task_and_queue(store: SqlStore) -> None:
    reviews = store.review
    first, created = reviews.upsert_open_item(item(score=0.9, margin=0.3))
    again, created_again = reviews.upsert_open_item(item(score=0.95, margin=0.35))
    other, _ = reviews.upsert_open_item(item("low_confidence", margin=0.01))
    assert created and not created_again and again.id == first.id and again.margin == 0.35
    assert other.id != first.id
    assert [i.id for i in reviews.open_task_items(1, 10)] == [first.id, other.id]
    assert reviews.dismiss([other.id], "labeled") == 1 and reviews.dismiss([other.id], "labeled") == 0
    counts = reviews.queue_counts(1, since=0)
    assert counts == {"false_positive": {OPEN: 1}, "low_confidence": {DISMISSED: 1}}


def test_external_reports_are_stored_once(store: SqlStore) -> None:
    reviews = store.review
    a, created = reviews.add_external(item(task=None, external_id="ext-1", reporter="mod-system"))
    b, created_b = reviews.add_external(item(task=None, external_id="ext-1", text="different"))
    assert created and not created_b and a.id == b.id and b.text == "you are trash"
    assert reviews.by_external_id(1, "ext-1") == a
    c, created_c = reviews.add_external(item(task=None, external_id="ext-2"))
    assert created_c and c.id != a.id


def test_a_verdict_closes_every_open_item_of_the_text_and_overrides_the_training_label(store: SqlStore) -> None:
    reviews = store.review
    store.tasks.upsert(1, [(10, {"text": "you are trash", "meta": 1}), (11, {"text": "hello"})])
    store.annotations.upsert(AnnotationRecord(id=100, project_id=1, task_id=10, choices={"moderation": ["Safe"]}))
    store.annotations.upsert(AnnotationRecord(id=101, project_id=1, task_id=11, choices={"moderation": ["Safe"]}))
    fp, _ = reviews.upsert_open_item(item())
    low, _ = reviews.upsert_open_item(item("low_confidence", task=None))
    reviews.set_ls_task(fp.id, 500, 9001)
    fp = reviews.item_by_ls_task(500, 9001) or fp
    assert reviews.resolve(fp, ["Violating"], "moderator@example.com") == [fp.id, low.id]
    assert {i.state for i in reviews.items(1, states=(RESOLVED,))} == {RESOLVED}
    assert reviews.items(1) == []

    reviews.put_moderator_label(fp, ["Violating"], "moderator@example.com")
    external, _ = reviews.add_external(item(task=None, text="only reported", external_id="e"))
    reviews.put_moderator_label(external, ["Potentially Harmful"], "moderator@example.com")
    training = {ex.task_id: ex for ex in store.review.merge_moderator_labels(1, store.annotations.training_set(1))}
    assert training[10].choices == {"moderation": ["Violating"]}  # the moderator overrides the annotator
    assert training[11].choices == {"moderation": ["Safe"]}
    (extra,) = [ex for tid, ex in training.items() if tid < 0]
    assert extra.data == {"text": "only reported"} and extra.choices == {"moderation": ["Potentially Harmful"]}
    labels = reviews.moderator_labels(1)
    assert [(m.text, m.labels, m.task_id) for m in labels] == [
        ("you are trash", ("Violating",), 10),
        ("only reported", ("Potentially Harmful",), None),
    ]


def test_review_projects_and_served_scores(store: SqlStore) -> None:
    from backend.store.records import ReviewProjectRecord

    reviews = store.review
    reviews.add_review_project(ReviewProjectRecord(77, 1, "false_positive", "moderation", "http://t/webhook"))
    assert reviews.review_project_by_ls(77) == reviews.review_project(1, "false_positive")
    fp, _ = reviews.upsert_open_item(item())
    reviews.set_ls_task(fp.id, 77, 5)
    reviews.forget_review_project(77)
    assert reviews.review_project_by_ls(77) is None and reviews.get_item(fp.id).ls_task_id is None  # type: ignore[union-attr]

    reviews.replace_scores(1, "v1", "reference", [0.1, 0.2])
    reviews.replace_scores(1, "v1", "reference", [0.3])
    reviews.add_scores(1, "v1", "served", [0.5, 0.6, 0.7, 0.8])
    assert reviews.scores(1, "v1", "reference", newest=10) == [0.3]
    assert reviews.prune_served(1, "v1", keep=2) == 2
    assert reviews.scores(1, "v1", "served", newest=10) == [0.8, 0.7]


def test_served_predictions_and_tasks_with_items_for_the_disagreement_scan(store: SqlStore) -> None:
    reviews = store.review
    store.tasks.upsert(1, [(10, {"text": "you are trash"}), (11, {"text": "hello"}), (12, {"text": "hi"})])
    store.tasks.record_predictions(
        1, {10: {"model_version": "v1", "probabilities": {"moderation": {"Violating": 0.9}}}}
    )
    assert store.tasks.predictions(1, [10, 11, 99]) == {
        10: {"model_version": "v1", "probabilities": {"moderation": {"Violating": 0.9}}},
        11: None,
    }
    fp, _ = reviews.upsert_open_item(item())
    reviews.upsert_open_item(item("low_confidence", task=11))
    reviews.dismiss([fp.id], "label changed")
    assert reviews.tasks_with_items(1, ("false_positive", "false_negative")) == {10}  # any state counts
