"""Per-project query strategy (empty: the settings' default).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.strategy."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("strategy", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop projects.strategy."""
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("strategy")
