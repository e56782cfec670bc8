"""Migration 0010 on a database written by the previous schema (0009): rows survive, keys become (project, task),
times become Unix seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from backend.store import SqlStore
from backend.store.db import MIGRATIONS


def _upgrade(store: SqlStore, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A store migrated to 0009 only, with a project, two tasks, an annotation and a version in the old layout."""
    url = f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = SqlStore(url)
    _upgrade(store, "0009")
    when = "'2026-12-01 10:00:00.250000'"
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (id, label_config, config_hash, ls_url, ls_token, current_version, pushed_tasks,"
                f" synced_at, strategy, created_at, updated_at) VALUES (7, '<View/>', 'h', '', '', NULL, '[]', '', '',"
                f" {when}, {when})"
            )
        )
        for tid in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO tasks (id, project_id, data, text_hash, updated_at) "
                    f"VALUES ({tid}, 7, '{{\"text\": \"t{tid}\"}}', 'x{tid}', {when})"
                )
            )
        conn.execute(
            text(
                "INSERT INTO annotations (id, project_id, task_id, choices, author, was_cancelled, deleted, "
                "ls_created_at, ls_updated_at, created_at, updated_at) VALUES (11, 7, 1, "
                f"'{{\"topic\": [\"World\"]}}', 'a', false, false, '', '', {when}, {when})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO model_versions (project_id, name, tier, status, n_train, label_counts, metrics, "
                f"train_seconds, artifact_path, config_hash, error, created_at) VALUES (7, '7-fast-1', 'fast', "
                f"'ready', 1, '{{}}', '{{}}', 0.1, '', 'h', '', {when})"
            )
        )
    yield store
    store.close()


def test_0010_keeps_rows_keys_tasks_by_project_and_converts_times(old_store: SqlStore) -> None:
    old_store.migrate()
    seconds = 1796119200.25  # 2026-12-01 10:00:00.25 UTC
    assert old_store.tasks.get(7, 1) == {"text": "t1"} and old_store.tasks.ids(7) == [1, 2]
    ann = old_store.annotations.get(7, 11)
    assert ann is not None and ann.choices == {"topic": ["World"]} and ann.accepted is None
    version = old_store.versions.get("7-fast-1")
    assert version is not None and version.created_at == pytest.approx(seconds, abs=1e-3)
    with old_store.session() as s:
        created = s.execute(text("SELECT created_at FROM projects WHERE id = 7")).scalar_one()
    assert float(created) == pytest.approx(seconds, abs=1e-3)
    old_store.projects.upsert(8, "<View/>", "h")
    assert old_store.tasks.upsert(8, [(1, {"text": "t1"})]) == 1  # task id 1 again, in another project
    assert old_store.tasks.get(8, 1) == {"text": "t1"} and old_store.tasks.ids(7) == [1, 2]
