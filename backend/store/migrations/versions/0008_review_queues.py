"""Moderation review: queue items, Label Studio review projects, moderator labels and served scores (PSI).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _project_fk() -> sa.Column:
    return sa.Column("project_id", sa.BigInteger(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    """Create review_items, review_projects, moderator_labels and served_scores (times are Unix seconds)."""
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _project_fk(),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("control", sa.String(200), nullable=False),
        sa.Column("value_key", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_key", sa.String(64), nullable=False),
        sa.Column("predicted", sa.JSON(), nullable=False),
        sa.Column("human", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reporter", sa.String(320), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("ls_project_id", sa.BigInteger(), nullable=True),
        sa.Column("ls_task_id", sa.BigInteger(), nullable=True),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("moderator", sa.String(320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.UniqueConstraint("project_id", "external_id", name="uq_review_items_external_id"),
    )
    op.create_index("ix_review_items_queue", "review_items", ["project_id", "queue", "state"])
    op.create_index("ix_review_items_task", "review_items", ["project_id", "task_id"])
    op.create_index("ix_review_items_text", "review_items", ["project_id", "text_key"])
    op.create_index("ix_review_items_ls_task", "review_items", ["ls_project_id", "ls_task_id"])
    op.create_table(
        "review_projects",
        sa.Column("ls_project_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        _project_fk(),
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("control", sa.String(200), nullable=False),
        sa.Column("webhook_url", sa.String(1000), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("project_id", "queue", name="uq_review_projects_queue"),
    )
    op.create_table(
        "moderator_labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _project_fk(),
        sa.Column("control", sa.String(200), nullable=False),
        sa.Column("value_key", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_key", sa.String(64), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("moderator", sa.String(320), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("project_id", "control", "text_key", name="uq_moderator_labels_text"),
    )
    op.create_table(
        "served_scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _project_fk(),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_served_scores_version", "served_scores", ["project_id", "model_version", "kind", "id"])


def downgrade() -> None:
    """Drop the review tables."""
    for table in ("served_scores", "moderator_labels", "review_projects", "review_items"):
        op.drop_table(table)
