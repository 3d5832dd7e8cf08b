"""The results store (SQLAlchemy 2.x): students, rubrics, attempts, per-check results and
the snapshot of every attempt. SQLite file by default; any SQLAlchemy URL works."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from .. import __version__
from ..errors import StoreError
from ..outcome import Outcome
from ..rubric.model import Rubric
from ..snapshot import Snapshot

DEFAULT_DB = "sqlite:///grader.db"


def default_url() -> str:
    return os.environ.get("GRADER_DB") or DEFAULT_DB


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
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id"), index=True)
    rubric_row_id: Mapped[int] = mapped_column(ForeignKey("rubrics.id"), index=True)
    snapshot_digest: Mapped[str] = mapped_column(ForeignKey("snapshots.digest"))
    source: Mapped[str] = mapped_column(String(20))  # grade | check | batch | import
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    grader_version: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    student: Mapped[StudentRow] = relationship()
    rubric: Mapped[RubricRow] = relationship()
    checks: Mapped[list[CheckRow]] = relationship(back_populates="attempt", cascade="all, delete-orphan")


class CheckRow(Base):
    __tablename__ = "check_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    check_id: Mapped[str] = mapped_column(String(100))
    task: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole CheckResult
    attempt: Mapped[AttemptRow] = relationship(back_populates="checks")


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # concurrent writers on one machine
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


class Store:
    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        try:
            self.engine = create_engine(self.url)
            if self.engine.dialect.name == "sqlite":
                _sqlite_pragmas(self.engine)
            Base.metadata.create_all(self.engine)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the results database {self.url}: {str(exc).splitlines()[0]}") from exc

    def record(self, student: str, rubric: Rubric, snapshot: Snapshot, outcome: Outcome, source: str) -> int:
        """Store one attempt with its snapshot and per-check results; returns its id."""
        try:
            with Session(self.engine) as session, session.begin():
                student_row = session.scalar(select(StudentRow).where(StudentRow.name == student))
                if student_row is None:
                    student_row = StudentRow(name=student)
                    session.add(student_row)
                rubric_row = session.scalar(
                    select(RubricRow).where(RubricRow.rubric_id == rubric.id, RubricRow.digest == rubric.digest)
                )
                if rubric_row is None:
                    rubric_row = RubricRow(
                        rubric_id=rubric.id,
                        version=rubric.version,
                        digest=rubric.digest,
                        content=rubric.model_dump(mode="json"),
                    )
                    session.add(rubric_row)
                if session.get(SnapshotRow, snapshot.digest) is None:
                    session.add(SnapshotRow(digest=snapshot.digest, body=snapshot.to_json()))
                attempt = AttemptRow(
                    student=student_row,
                    rubric=rubric_row,
                    snapshot_digest=snapshot.digest,
                    source=source,
                    graded_at=datetime.now(UTC),
                    grader_version=__version__,
                    score=outcome.score,
                    max_score=outcome.max_score,
                    checks=[
                        CheckRow(
                            check_id=c.id,
                            task=c.task,
                            status=c.status,
                            points=c.points,
                            max_points=c.max_points,
                            result=json.loads(c.model_dump_json()),
                        )
                        for c in outcome.checks
                    ],
                )
                session.add(attempt)
                session.flush()
                return attempt.id
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot store the attempt in {self.url}: {str(exc).splitlines()[0]}") from exc
