"""Remember which tasks got predictions pushed to Label Studio for the current version.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.pushed_tasks (JSON list of LS task ids)."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("pushed_tasks", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    """Drop projects.pushed_tasks."""
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("pushed_tasks")
