"""Batch jobs: the students of a scaled-out batch, claimed by workers with row locks.

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
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch", sa.String(100), nullable=False),
        sa.Column("student", sa.String(200), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id"), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("batch", "student"),
    )
    op.create_index("ix_batch_jobs_batch", "batch_jobs", ["batch"])


def downgrade() -> None:
    op.drop_table("batch_jobs")
