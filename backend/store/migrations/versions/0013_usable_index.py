"""A partial index of usable annotations (not deleted, not skipped) by (project, task): the count of labeled tasks
every webhook makes reads it alone, in time that no longer grows with the table's other rows.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ix_annotations_usable."""
    op.create_index(
        "ix_annotations_usable",
        "annotations",
        ["project_id", "task_id"],
        sqlite_where=sa.text("deleted IS 0 AND was_cancelled IS 0"),
        postgresql_where=sa.text("deleted IS false AND was_cancelled IS false"),
    )


def downgrade() -> None:
    """Drop ix_annotations_usable."""
    op.drop_index("ix_annotations_usable", table_name="annotations")
