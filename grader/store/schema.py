"""The tables of the results store. Changing them needs an Alembic migration in
``migrations/versions`` (tests/test_store.py checks that the two agree)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class StudentRow(Base):
    __tablename__ = "students"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class RubricRow(Base):
    __tablename__ = "rubrics"
    __table_args__ = (UniqueConstraint("rubric_id", "digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rubric_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(50))
    digest: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)


class SnapshotRow(Base):
    __tablename__ = "snapshots"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class AttemptRow(Base):
    __tablename__ = "attempts"
    # A student's attempts are found by student, and a bundle sent again by student and
    # snapshot: one index serves both (by student alone, a live class's "stored already?"
    # read each student's every attempt, hundreds by the end of a lab).
    __table_args__ = (Index("ix_attempts_student_id_snapshot_digest", "student_id", "snapshot_digest"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"))
    rubric_row_id: Mapped[int] = mapped_column(ForeignKey("rubrics.id"), index=True)
    # No snapshot when the daemon could not be graded; `error` says why.
    snapshot_digest: Mapped[str | None] = mapped_column(ForeignKey("snapshots.digest"), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(20))  # grade | check | batch | import
    # Of an import: "verified" (sealed with the student's key, checked with the course
    # secret) or "unverified"; None for a daemon the grader inspected itself.
    identity: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # The daemon the snapshot came from, to find two students' attempts from one daemon: the
    # engine's ID (older snapshots have none) and the JSON list of the student's containers'
    # IDs (grader.facts.daemon_ids). Read with every attempt, without its snapshot.
    engine_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    container_ids: Mapped[str] = mapped_column(Text, default="[]")
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    regraded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    grader_version: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    # Every check's result (a JSON list of CheckResult, in rubric order); empty when the
    # daemon could not be graded. One document per attempt: written and read as a whole.
    results: Mapped[str] = mapped_column(Text, default="[]")
    student: Mapped[StudentRow] = relationship()
    rubric: Mapped[RubricRow] = relationship()


class JobRow(Base):
    """One student of a scaled-out batch: workers on several machines claim pending rows
    with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) and hold the lock while grading."""

    __tablename__ = "batch_jobs"
    __table_args__ = (UniqueConstraint("batch", "student"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(100), index=True)
    student: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | done
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
