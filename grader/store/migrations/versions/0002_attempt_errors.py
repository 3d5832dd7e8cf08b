"""Attempts that could not grade a daemon: nullable snapshot, the error, and regrade time.

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
    with op.batch_alter_table("attempts") as batch:
        batch.alter_column("snapshot_digest", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("regraded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("regraded_at")
        batch.drop_column("error")
        batch.alter_column("snapshot_digest", existing_type=sa.String(64), nullable=False)
