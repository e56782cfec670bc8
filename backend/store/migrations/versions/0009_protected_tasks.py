"""Tasks whose pushed predictions a push keeps because an annotator may have them open (task id → since when).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.protected_tasks."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("protected_tasks", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop projects.protected_tasks."""
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("protected_tasks")
