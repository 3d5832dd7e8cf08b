"""Baseline: the schema of grader 0.1 (students, rubrics, snapshots, attempts, check results).

Databases made by grader 0.1 have these tables but no alembic_version; the store stamps
them with this revision and upgrades them from here.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "students",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "rubrics",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rubric_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.UniqueConstraint("rubric_id", "digest"),
    )
    op.create_index("ix_rubrics_rubric_id", "rubrics", ["rubric_id"])
    op.create_table(
        "snapshots",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("student_id", sa.Integer(), sa.ForeignKey("students.id"), nullable=False),
        sa.Column("rubric_row_id", sa.Integer(), sa.ForeignKey("rubrics.id"), nullable=False),
        sa.Column("snapshot_digest", sa.String(64), sa.ForeignKey("snapshots.digest"), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("graded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grader_version", sa.String(40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
    )
    op.create_index("ix_attempts_student_id", "attempts", ["student_id"])
    op.create_index("ix_attempts_rubric_row_id", "attempts", ["rubric_row_id"])
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id"), nullable=False),
        sa.Column("check_id", sa.String(100), nullable=False),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("max_points", sa.Float(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
    )
    op.create_index("ix_check_results_attempt_id", "check_results", ["attempt_id"])


def downgrade() -> None:
    for table in ("check_results", "attempts", "snapshots", "rubrics", "students"):
        op.drop_table(table)
