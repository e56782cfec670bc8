"""The store on both databases it supports: SQLite (WAL, the default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from backend.store import AnnotationRecord, ModelVersionRecord, SqlStore


def ann(aid: int, task: int, labels: list[str], **kw: object) -> AnnotationRecord:
    return AnnotationRecord(id=aid, project_id=1, task_id=task, choices={"topic": labels}, **kw)  # type: ignore[arg-type]


def test_migrations_create_tables_and_are_idempotent(store: SqlStore) -> None:
    store.migrate()
    tables = set(inspect(store.engine).get_table_names())
    assert {"projects", "tasks", "annotations", "model_versions", "alembic_version"} <= tables


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    s = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    s.migrate()
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    s.close()


def test_the_per_label_count_reads_the_partial_index_alone(tmp_path: Path) -> None:
    """Every webhook counts the labeled tasks: SQLite answers from ``ix_annotations_usable`` (no table rows)."""
    from backend.store.annotations import _COUNT_USABLE

    s = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    s.migrate()
    s.projects.upsert(1, "<View/>", "h")
    s.tasks.upsert(1, [(t, {"text": str(t)}) for t in range(40)])
    for aid in range(60):  # two annotations of some tasks, some skipped, one deleted
        s.annotations.upsert(ann(aid, aid % 40, ["World"], was_cancelled=aid % 7 == 0))
    s.annotations.mark_deleted(1, [1])
    sql = str(_COUNT_USABLE.compile(s.engine))  # "... project_id = ? ..."
    with s.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (1,)))
    assert "USING COVERING INDEX ix_annotations_usable" in plan or "USING INDEX ix_annotations_usable" in plan, plan
    usable = {a % 40 for a in range(60) if a % 7 != 0 and a != 1}
    assert s.annotations.count(1, usable=True) == len(usable)
    s.close()


def test_project_upsert_keeps_ls_credentials(store: SqlStore) -> None:
    store.projects.upsert(1, "<View/>", "h1", ls_url="http://ls", ls_token="tok")
    p = store.projects.upsert(1, "<View>2</View>", "h2")
    assert (p.label_config, p.config_hash, p.ls_url, p.ls_token) == ("<View>2</View>", "h2", "http://ls", "tok")
    assert [x.id for x in store.projects.all()] == [1]


def test_a_push_records_its_tasks_protection_and_version(store: SqlStore) -> None:
    store.projects.upsert(1, "<View/>", "h1")
    assert store.projects.get(1).pushed_version is None  # nothing pushed yet
    store.projects.set_pushed_tasks(1, [5, 3, 9], {3: 10.0}, ranking=("1-fast-4", "margin"))
    p = store.projects.get(1)
    assert (p.pushed_tasks, dict(p.protected_tasks)) == ((5, 3, 9), {3: 10.0})
    assert (p.pushed_version, p.pushed_strategy) == ("1-fast-4", "margin")
    store.projects.set_pushed_tasks(1, [3])  # only kept tasks: the ranking pushed last stays recorded
    p = store.projects.get(1)
    assert (p.pushed_tasks, p.pushed_version, p.pushed_strategy) == ((3,), "1-fast-4", "margin")


def test_annotations_upsert_delete_cancel_and_training_set(store: SqlStore) -> None:
    store.projects.upsert(1, "<View/>", "h")
    assert store.tasks.upsert(1, [(10, {"text": "a"}), (11, {"text": "b"}), (12, {"text": "c"})]) == 3
    assert store.tasks.upsert(1, [(10, {"text": "a"})]) == 0
    assert store.tasks.upsert(1, [(10, {"text": "a2"})]) == 1
    assert store.annotations.upsert(ann(100, 10, ["World"], ls_updated_at="2026-01-01T00:00:01"))
    assert not store.annotations.upsert(ann(100, 10, ["World"], ls_updated_at="2026-01-01T00:00:01"))
    assert store.annotations.upsert(ann(100, 10, ["Sports"], ls_updated_at="2026-01-01T00:00:02"))
    assert not store.annotations.upsert(ann(100, 10, ["Business"], ls_updated_at="2026-01-01T00:00:00"))  # stale
    store.annotations.upsert(ann(101, 11, ["World"]))
    store.annotations.upsert(ann(102, 12, ["World"], was_cancelled=True))
    examples = {e.task_id: e for e in store.annotations.training_set(1)}
    assert set(examples) == {10, 11}
    assert examples[10].choices == {"topic": ["Sports"]} and examples[10].data == {"text": "a2"}
    assert store.annotations.count(1, usable=True) == 2
    assert store.annotations.mark_deleted(1, [101, 999]) == 1
    assert store.annotations.mark_deleted(1, [101]) == 0
    assert not store.annotations.upsert(ann(101, 11, ["Sports"]))  # a deleted annotation is not resurrected
    assert {e.task_id for e in store.annotations.training_set(1)} == {10}
    kept = {a.id: a for a in store.annotations.of_project(1)}
    assert kept[101].deleted and kept[102].was_cancelled and len(kept) == 3
    # what a push reads again after ranking: the tasks labeled (or skipped) meanwhile, not those deleted
    assert store.tasks.labeled_among(1, [10, 11, 12, 99]) == {10, 12}
    assert store.tasks.labeled_among(1, []) == set()


def test_versions(store: SqlStore) -> None:
    store.projects.upsert(1, "<View/>", "h")
    assert store.versions.count(1, "setfit") == 0
    rec = store.versions.add(
        ModelVersionRecord(name="1-setfit-1", project_id=1, tier="setfit", n_train=16, metrics={"a": 1.0})
    )
    assert rec.created_at is not None
    store.projects.set_current_version(1, "1-setfit-1")
    assert store.projects.get(1).current_version == "1-setfit-1"  # type: ignore[union-attr]
    assert store.versions.get("1-setfit-1").metrics == {"a": 1.0}  # type: ignore[union-attr]
    assert store.versions.count(1, "setfit") == 1 and store.versions.get("nope") is None


def test_data_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    first = SqlStore(url)
    first.migrate()
    first.projects.upsert(1, "<View/>", "h")
    first.tasks.upsert(1, [(10, {"text": "a"})])
    first.annotations.upsert(ann(100, 10, ["World"]))
    first.close()
    second = SqlStore(url)
    second.migrate()
    assert [a.id for a in second.annotations.of_project(1)] == [100]
    second.close()
