"""The model version whose predictions a project's last push imported into Label Studio (a push of the same version,
i.e. a re-rank after a strategy change, protects nothing: see ``backend.loop.sync``).

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
    """Add projects.pushed_version (NULL: no push recorded yet)."""
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("pushed_version", sa.String(120), nullable=True))


def downgrade() -> None:
    """Drop projects.pushed_version."""
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("pushed_version")
