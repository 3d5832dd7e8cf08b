"""Where an attempt came from: ``attempts.identity`` says whether an imported bundle's sender was
verified with a student key ("verified", "unverified"; NULL for a daemon the grader inspected
itself). Bundles imported before keys existed were not verified.

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
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("identity", sa.String(10), nullable=True))
    op.execute("UPDATE attempts SET identity = 'unverified' WHERE source = 'import'")


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("identity")
