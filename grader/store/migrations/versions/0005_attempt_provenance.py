"""Where an attempt came from: ``attempts.identity`` says whether an imported bundle's sender was
verified with a student key ("verified", "unverified"; NULL for a daemon the grader inspected
itself); bundles imported before keys existed were not verified. ``attempts.engine_id`` and
``attempts.container_ids`` name the daemon the snapshot came from, read here from the stored
snapshots (older ones have no engine ID: only their containers' IDs).

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("identity", sa.String(10), nullable=True))
        batch.add_column(sa.Column("engine_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("container_ids", sa.Text(), nullable=False, server_default="[]"))
    op.execute("UPDATE attempts SET identity = 'unverified' WHERE source = 'import'")
    bind = op.get_bind()
    digests = bind.execute(sa.text("SELECT DISTINCT snapshot_digest FROM attempts WHERE snapshot_digest IS NOT NULL"))
    update = sa.text("UPDATE attempts SET engine_id = :e, container_ids = :c WHERE snapshot_digest = :d")
    for (digest,) in digests.all():
        body = json.loads(bind.execute(sa.text("SELECT body FROM snapshots WHERE digest = :d"), {"d": digest}).scalar())
        engine_id, container_ids = _daemon(body)
        bind.execute(update, {"e": engine_id, "c": json.dumps(container_ids), "d": digest})


def _daemon(snapshot: dict) -> tuple[str | None, list[str]]:
    """As grader.facts.daemon_ids reads a snapshot (a migration keeps its own copy: the
    grader's code may change after it), wary of any shape: bundles imported before their
    shape was checked may hold anything."""
    engine = snapshot.get("engine")
    engine_id = engine.get("ID") if isinstance(engine, dict) else None
    ids = []
    for c in snapshot.get("containers") or []:
        config = c.get("Config") if isinstance(c, dict) else None
        labels = config.get("Labels") if isinstance(config, dict) else None
        probe = isinstance(labels, dict) and labels.get("grader.probe") == "1"
        if isinstance(c, dict) and isinstance(c.get("Id"), str) and not probe:
            ids.append(c["Id"])
    return (engine_id if isinstance(engine_id, str) and len(engine_id) <= 200 else None), ids


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("container_ids")
        batch.drop_column("engine_id")
        batch.drop_column("identity")
