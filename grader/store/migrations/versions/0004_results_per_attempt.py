"""Per-check results as one JSON document per attempt (attempts.results) instead of a row per
check: an attempt's results are always written and read as a whole, and regrading thousands
of attempts rewrites thousands of rows instead of hundreds of thousands.

Revision ID: 0004
Revises: 0003
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("results", sa.Text(), nullable=False, server_default="[]"))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT attempt_id, result FROM check_results ORDER BY attempt_id, id"))
    results: dict[int, list[object]] = {}
    for attempt_id, result in rows:
        results.setdefault(attempt_id, []).append(json.loads(result) if isinstance(result, str) else result)
    update = sa.text("UPDATE attempts SET results = :results WHERE id = :id")
    for attempt_id, checks in results.items():
        bind.execute(update, {"id": attempt_id, "results": json.dumps(checks, separators=(",", ":"))})
    op.drop_table("check_results")


def downgrade() -> None:
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
    bind = op.get_bind()
    insert = sa.text(
        "INSERT INTO check_results (attempt_id, check_id, task, status, points, max_points, result)"
        " VALUES (:a, :i, :t, :s, :p, :m, :r)"
    )
    for attempt_id, text in bind.execute(sa.text("SELECT id, results FROM attempts")).all():
        for c in json.loads(text):
            values = {"i": c["id"], "t": c["task"], "s": c["status"], "p": c["points"], "m": c["max_points"]}
            bind.execute(insert, {"a": attempt_id, **values, "r": json.dumps(c)})
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("results")
