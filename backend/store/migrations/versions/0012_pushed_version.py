"""The model version and queue strategy of a project's last push into Label Studio (a push that re-ranks the same
version with another strategy protects nothing: see ``backend.loop.sync``).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.pushed_version and pushed_strategy (NULL: no push recorded yet)."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("pushed_version", sa.String(120), nullable=True))
        batch.add_column(sa.Column("pushed_strategy", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop projects.pushed_version and pushed_strategy."""
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("pushed_strategy")
        batch.drop_column("pushed_version")
