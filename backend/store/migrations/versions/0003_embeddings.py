"""Embedding cache keyed by (body, text hash), shared by training tiers, ranking and every process.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create embeddings."""
    op.create_table(
        "embeddings",
        sa.Column("body_key", sa.String(32), primary_key=True),
        sa.Column("text_hash", sa.String(64), primary_key=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    """Drop embeddings."""
    op.drop_table("embeddings")
