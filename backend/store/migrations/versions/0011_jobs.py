"""One job table for every kind of background work: ``training_jobs`` becomes ``jobs``, ``tier`` becomes ``kind``
(plus its ``lane``), and a job's outcome is data (``result`` JSON) instead of a truncated sentence in ``version``.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``jobs``, copy every training job (its ``version`` into ``result``), drop ``training_jobs``."""
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lane", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.String(200), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(120), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    dialect = op.get_bind().dialect.name
    result = "json_build_object('summary', version)" if dialect == "postgresql" else "json_object('summary', version)"
    op.execute(
        "INSERT INTO jobs (id, project_id, kind, lane, state, reason, attempts, max_attempts, run_after, progress, "
        "message, error, result, worker, heartbeat_at, created_at, started_at, finished_at) "
        "SELECT id, project_id, tier, CASE WHEN tier IN ('setfit', 'transformer') THEN 'slow' ELSE 'fast' END, "
        f"state, reason, attempts, max_attempts, run_after, progress, message, error, {result}, worker, "
        "heartbeat_at, created_at, started_at, finished_at FROM training_jobs"
    )
    if dialect == "postgresql":  # the copied ids must not be handed out again
        op.execute("SELECT setval(pg_get_serial_sequence('jobs', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM jobs")
    op.drop_table("training_jobs")
    op.create_index("ix_jobs_state", "jobs", ["state", "run_after"])
    op.create_index("ix_jobs_project_kind", "jobs", ["project_id", "kind"])


def downgrade() -> None:
    """Not supported (0010 cannot be downgraded either)."""
    raise NotImplementedError("0011 cannot be downgraded")
