"""A student's attempts are indexed by student and snapshot, not by student alone: a live
class asks "has this student an attempt with this snapshot already?" for every bundle, and by
student alone that read each of the student's attempts (hundreds by the end of a lab). The
new index's first column serves the lookups by student the old one did.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_attempts_student_id_snapshot_digest", "attempts", ["student_id", "snapshot_digest"])
    op.drop_index("ix_attempts_student_id", "attempts")


def downgrade() -> None:
    op.create_index("ix_attempts_student_id", "attempts", ["student_id"])
    op.drop_index("ix_attempts_student_id_snapshot_digest", "attempts")
