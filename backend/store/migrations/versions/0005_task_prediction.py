"""Keep the last prediction tagloop served for each task (provenance for exports and review queues).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tasks.prediction: {"model_version", "score", "choices": {control: [...]}}."""
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("prediction", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop tasks.prediction."""
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("prediction")
