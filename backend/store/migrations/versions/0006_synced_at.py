"""Catch-up watermark: the newest Label Studio task ``updated_at`` tagloop has read back.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.synced_at (ISO time string, empty = never)."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("synced_at", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop projects.synced_at."""
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("synced_at")
