"""Tasks and annotations keyed by (project, Label Studio id); detached projects; what annotators were shown; stop-set
predictions per version; every time a Unix-seconds float.

Label Studio hands task ids out again after a project is deleted, so a task id alone does not identify a task.
``tasks`` and ``annotations`` are rebuilt with the composite primary key (rows copied); the DATETIME columns of
``projects``, ``tasks``, ``annotations`` and ``model_versions`` become Unix seconds like every other table's.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _seconds(column: str) -> str:
    """SQL turning an old DATETIME (stored as UTC) into Unix seconds."""
    if op.get_bind().dialect.name == "postgresql":
        return f"extract(epoch from {column})"
    return f"(julianday({column}) - 2440587.5) * 86400.0"


def _project_fk() -> sa.Column:
    return sa.Column("project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def _to_seconds_in_place(table: str, columns: tuple[str, ...]) -> None:
    """PostgreSQL: change the column type with a USING cast; SQLite: store REAL values in the same columns (SQLite
    keeps a value's own type), so no table is rebuilt (``projects`` has children: rebuilding it would cascade)."""
    if op.get_bind().dialect.name == "postgresql":
        for column in columns:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE double precision USING {_seconds(column)}")
    else:
        sets = ", ".join(f"{c} = {_seconds(c)}" for c in columns)
        op.execute(f"UPDATE {table} SET {sets} WHERE typeof({columns[0]}) = 'text'")


def upgrade() -> None:
    """Rebuild tasks and annotations with composite keys; add the new columns; convert the times."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("ls_failing_since", sa.Float(), nullable=True))
        batch.add_column(sa.Column("detached_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("detached_reason", sa.Text(), nullable=False, server_default=""))
    _to_seconds_in_place("projects", ("created_at", "updated_at"))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("stop_set", sa.JSON(), nullable=True))
    _to_seconds_in_place("model_versions", ("created_at",))

    op.create_table(
        "tasks_0010",
        _project_fk(),
        sa.Column("id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_tasks"),
    )
    op.execute(
        "INSERT INTO tasks_0010 (project_id, id, data, text_hash, prediction, updated_at) "
        f"SELECT project_id, id, data, text_hash, prediction, {_seconds('updated_at')} FROM tasks"
    )
    op.drop_table("tasks")
    op.rename_table("tasks_0010", "tasks")
    op.create_index("ix_tasks_text_hash", "tasks", ["text_hash"])

    op.create_table(
        "annotations_0010",
        _project_fk(),
        sa.Column("id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("was_cancelled", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("ls_created_at", sa.String(64), nullable=False),
        sa.Column("ls_updated_at", sa.String(64), nullable=False),
        sa.Column("suggested", sa.JSON(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_annotations"),
    )
    op.execute(
        "INSERT INTO annotations_0010 (project_id, id, task_id, choices, author, was_cancelled, deleted, "
        "ls_created_at, ls_updated_at, created_at, updated_at) "
        "SELECT project_id, id, task_id, choices, author, was_cancelled, deleted, ls_created_at, ls_updated_at, "
        f"{_seconds('created_at')}, {_seconds('updated_at')} FROM annotations"
    )
    op.drop_table("annotations")
    op.rename_table("annotations_0010", "annotations")
    op.create_index("ix_annotations_project_deleted", "annotations", ["project_id", "deleted"])
    op.create_index("ix_annotations_project_task", "annotations", ["project_id", "task_id"])


def downgrade() -> None:
    """Not supported: task ids alone cannot tell apart the tasks of two projects any more."""
    raise NotImplementedError("0010 cannot be downgraded: (project, task id) keys do not fit task id keys")
