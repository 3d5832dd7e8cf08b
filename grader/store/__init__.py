"""The results store (SQLAlchemy 2.x): students, rubrics, attempts, per-check results and
the snapshot of every attempt. SQLite file by default; PostgreSQL for shared use. The
schema is kept by Alembic migrations; opening a store upgrades an older database."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import create_engine, event, func, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, defer, selectinload

from .. import __version__
from ..errors import StoreError, UsageError
from ..facts import daemon_ids
from ..outcome import CheckResult, Outcome
from ..rubric.model import Rubric
from ..snapshot import Snapshot
from ..util import batched
from .schema import AttemptRow, JobRow, RubricRow, SnapshotRow, StudentRow

DEFAULT_DB = "sqlite:///grader.db"
MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0005"  # the newest migration; tests/test_store.py checks it matches migrations/versions


def default_url() -> str:
    return os.environ.get("GRADER_DB") or DEFAULT_DB


@dataclass(frozen=True)
class Attempt:
    """One stored attempt, as the report, exports and regrade read it."""

    id: int
    student: str
    rubric_id: str
    rubric_version: str
    rubric_digest: str
    source: str
    graded_at: datetime
    grader_version: str
    score: float
    max_score: float
    snapshot_digest: str | None
    error: str | None
    checks: list[CheckResult]
    identity: str | None = None  # of an import: "verified" or "unverified" (a student key, checked or not)
    engine_id: str | None = None  # the daemon's (grader.facts.daemon_ids)
    container_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


LOCK_WAIT = 10  # seconds a SQLite writer waits for another one's lock before it gives up


def _sqlite_setup(engine: Engine, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below opens transactions
        if not read_only:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")  # concurrent writers on one machine
            # With WAL, a crashed grader loses nothing; only a power cut may lose the last commits.
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout={LOCK_WAIT * 1000}")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that reads, then writes,
        # fails at once (SQLITE_BUSY, no waiting) when another writer committed in between.
        write = connection.get_execution_options().get("write")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _foreign_keys(connection: Connection, state: str) -> None:
    """SQLite migrations copy tables; foreign keys are off meanwhile (outside a transaction)."""
    if connection.dialect.name == "sqlite":
        connection.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={state}")


def _row(session: Session, model: Any, key: dict[str, Any], values: dict[str, Any] | None = None) -> Any:
    """The row of ``model`` with this unique ``key``, inserted with ``values`` when missing."""
    query = select(model).filter_by(**key)
    found = session.scalars(query).first()
    if found is None:
        _insert_missing(session, model, {**key, **(values or {})})
        found = session.scalars(query).one()
    return found


def _insert_missing(session: Session, table: Any, values: dict[str, Any]) -> None:
    """INSERT unless a row with the same unique key exists, safe against concurrent writers."""
    dialect = session.get_bind().dialect.name
    # Each dialect's module is imported when used: PostgreSQL's is a tenth of a grade's imports.
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise StoreError(f"unsupported database {dialect}: use SQLite or PostgreSQL")
    session.execute(insert(table).values(**values).on_conflict_do_nothing())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _why(exc: BaseException) -> str:
    """One line; a lock held too long says so (SQLite's own words are only "database is locked")."""
    line = _first_line(exc)
    if "database is locked" in line:
        return f"another grader held the database locked for more than {LOCK_WAIT} s; try again"
    return line


def _read_only_sqlite(database: str | None) -> Any:
    """A connection factory for a SQLite file opened read-only. In a folder or on a file the
    user may not write, the file is opened as immutable: SQLite then needs no lock or WAL
    index file next to it (nobody can be writing it through this user either)."""
    import sqlite3
    from urllib.parse import quote

    path = Path(database or "")
    writable = os.access(path, os.W_OK) and os.access(path.parent if str(path.parent) else ".", os.W_OK)
    uri = f"file:{quote(str(path.absolute()))}?mode=ro" + ("" if writable else "&immutable=1")
    return lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)


class Store:
    def __init__(self, url: str | None = None, *, create: bool = True, read_only: bool = False):
        """Open (and upgrade) the store at ``url``. With ``create=False`` a database that
        does not exist yet is an error instead of being created empty. ``read_only`` (exports,
        reports) opens a SQLite file read-only: it works in a folder or on a file the user
        may not write, and never upgrades the schema."""
        self.url = url or default_url()
        try:
            # Batch workers each hold a connection while they grade (up to 64 in one process).
            pool = {} if self.url.startswith("sqlite") else {"pool_size": 8, "max_overflow": 56}
            self.engine = create_engine(self.url, **pool)
            if self.engine.dialect.name == "sqlite":
                self._check_sqlite_file(create)
                if read_only:
                    self.engine = create_engine(self.url, creator=_read_only_sqlite(self.engine.url.database))
                _sqlite_setup(self.engine, read_only)
            with self.engine.connect() as connection:
                current = _schema_version(connection)
                if current != HEAD and read_only:
                    raise StoreError(
                        f"the results database {self.url} has schema {current}, not {HEAD}: "
                        "open it once with a grader that may write it (grade, regrade) to upgrade it"
                    )
                if current != HEAD:
                    _foreign_keys(connection, "OFF")
                    with connection.execution_options(write=True).begin():
                        _migrate(connection)
                    _foreign_keys(connection, "ON")
        except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
            raise StoreError(f"cannot open the results database {self.url}: {_why(exc)}") from exc

    def _check_sqlite_file(self, create: bool) -> None:
        database = self.engine.url.database
        if not create and database not in (None, "", ":memory:") and not Path(database).exists():
            raise StoreError(f"no results database at {database} (grade someone first, or pass --db URL)")

    # -- writing ------------------------------------------------------------------------

    def record(
        self,
        student: str,
        rubric: Rubric,
        snapshot: Snapshot,
        outcome: Outcome,
        source: str,
        graded_at: datetime | None = None,
        job: Job | None = None,
        once: bool = False,
        identity: str | None = None,
    ) -> int:
        """Store one attempt with its snapshot and per-check results; returns its id. With a
        claimed ``job``, in the claim's transaction, which also marks the job done. With
        ``once``, raise AlreadyStored (storing nothing) when the student already has an attempt
        of this rubric with this very snapshot (an imported bundle). ``identity``: an import's
        "verified" or "unverified"."""
        with self._session("store the attempt", write=True, job=job) as session:
            attempt = self._attempt(session, student, rubric, source, graded_at)
            attempt.identity = identity
            engine_id, container_ids = daemon_ids(snapshot)
            attempt.engine_id, attempt.container_ids = engine_id, json.dumps(container_ids)
            if once:  # before the snapshot's body (about 50 KB) is sent for nothing
                self._refuse_known(session, attempt.student, rubric.id, snapshot.digest)
            _insert_missing(session, SnapshotRow, {"digest": snapshot.digest, "body": snapshot.to_json()})
            attempt.snapshot_digest = snapshot.digest
            encoded = encode(outcome)
            attempt.score, attempt.max_score, attempt.results = encoded.score, encoded.max_score, encoded.results
            return _add(session, attempt, job)

    def record_error(
        self,
        student: str,
        rubric: Rubric,
        source: str,
        error: str,
        graded_at: datetime | None = None,
        job: Job | None = None,
    ) -> int:
        """Store an attempt that could not grade the daemon (unreachable, TLS refused,
        timeout): it has a reason and no score, and is never counted as a zero."""
        with self._session("store the attempt", write=True, job=job) as session:
            attempt = self._attempt(session, student, rubric, source, graded_at)
            attempt.error = error
            attempt.score = 0.0
            attempt.max_score = 0.0
            return _add(session, attempt, job)

    # -- scaled-out batches (PostgreSQL) ------------------------------------------------

    def enqueue(self, batch: str, students: Iterable[str]) -> None:
        """Add the batch's students as pending jobs; ones already there keep their state."""
        self._require_row_locks()
        with self._session("enqueue the batch", write=True) as session:
            for student in students:
                _insert_missing(session, JobRow, {"batch": batch, "student": student, "state": "pending"})

    @contextmanager
    def claim(self, batch: str, worker: str) -> Iterator[Job | None]:
        """Claim one pending student of ``batch``, or None when none is left unclaimed. The
        row stays locked until the block ends: a worker that dies releases it with its
        connection, and the student goes to another worker."""
        session = Session(self.engine, expire_on_commit=False)
        try:
            with session.begin():
                row = session.scalars(
                    select(JobRow)
                    .where(JobRow.batch == batch, JobRow.state == "pending")
                    .order_by(JobRow.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    yield None
                    return
                row.worker = worker
                yield Job(row.id, row.student, session)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot claim a student of batch {batch} in {self.url}: {_first_line(exc)}") from exc
        finally:
            session.close()

    def jobs(self, batch: str) -> dict[str, str]:
        """student -> state, for a batch."""
        with self._session("read the batch") as session:
            return dict(session.execute(select(JobRow.student, JobRow.state).where(JobRow.batch == batch)).all())

    def _require_row_locks(self) -> None:
        if self.engine.dialect.name != "postgresql":
            raise UsageError(f"batch workers share a PostgreSQL database (row locks); {self.url} is not one")

    def replace_outcomes(self, rubric: Rubric, outcomes: Iterable[tuple[int, Encoded]]) -> None:
        """Regrade: each (attempt id, encoded outcome) replaces that attempt's per-check results,
        under ``rubric``; all in one transaction, written in chunks as ``outcomes`` streams in."""
        now = datetime.now(UTC)
        with self._session("store the regraded results", write=True) as session:
            rubric_row = self._rubric_row(session, rubric)
            session.flush()
            for chunk in batched(outcomes, 500):
                row = {"rubric_row_id": rubric_row.id, "regraded_at": now}
                changes = [
                    {**row, "id": i, "score": e.score, "max_score": e.max_score, "results": e.results} for i, e in chunk
                ]
                session.execute(update(AttemptRow), changes)

    def _attempt(
        self, session: Session, student: str, rubric: Rubric, source: str, graded_at: datetime | None
    ) -> AttemptRow:
        return AttemptRow(
            student=_row(session, StudentRow, {"name": student}),
            rubric=self._rubric_row(session, rubric),
            source=source,
            # In UTC always: SQLite keeps no offset, and every reader takes a naive time as UTC.
            graded_at=(graded_at or datetime.now(UTC)).astimezone(UTC),
            grader_version=__version__,
        )

    @staticmethod
    def _refuse_known(session: Session, student: StudentRow, rubric_id: str, digest: str) -> None:
        # The student's row lock makes concurrent imports for one student wait for each other
        # (PostgreSQL; SQLite's write transactions are serial anyway): the check sees the other's attempt.
        session.execute(select(StudentRow.id).where(StudentRow.id == student.id).with_for_update())
        known = (
            select(AttemptRow.id)
            .join(AttemptRow.rubric)
            .where(
                AttemptRow.student_id == student.id,
                RubricRow.rubric_id == rubric_id,
                AttemptRow.snapshot_digest == digest,
            )
        )
        if session.scalars(known.limit(1)).first() is not None:
            raise AlreadyStored(f"{student.name} already has an attempt with snapshot {digest[:12]}")

    @staticmethod
    def _rubric_row(session: Session, rubric: Rubric) -> RubricRow:
        values = {"version": rubric.version, "content": rubric.model_dump(mode="json")}
        return _row(session, RubricRow, {"rubric_id": rubric.id, "digest": rubric.digest}, values)

    # -- reading ------------------------------------------------------------------------

    def attempts(self, rubric_id: str | None = None, student: str | None = None, checks: bool = True) -> list[Attempt]:
        """Attempts ordered by student, then time."""
        query = (
            select(AttemptRow)
            .join(AttemptRow.student)
            .join(AttemptRow.rubric)
            .options(selectinload(AttemptRow.student), selectinload(AttemptRow.rubric))
            .order_by(StudentRow.name, AttemptRow.graded_at, AttemptRow.id)
        )
        if not checks:
            query = query.options(defer(AttemptRow.results))
        if rubric_id is not None:
            query = query.where(RubricRow.rubric_id == rubric_id)
        if student is not None:
            query = query.where(StudentRow.name == student)
        with self._session("read attempts") as session:
            return [_attempt(row, checks) for row in session.scalars(query)]

    def count_attempts(self, rubric_id: str, student: str | None = None) -> int:
        query = select(func.count()).select_from(AttemptRow).join(AttemptRow.rubric).join(AttemptRow.student)
        query = query.where(RubricRow.rubric_id == rubric_id)
        if student is not None:
            query = query.where(StudentRow.name == student)
        with self._session("count attempts") as session:
            return session.scalar(query) or 0

    def snapshot(self, digest: str) -> Snapshot:
        with self._session("read a snapshot") as session:
            row = session.get(SnapshotRow, digest)
            if row is None:
                raise StoreError(f"no snapshot {digest[:12]} in {self.url}")
            return Snapshot.from_json(row.body)

    def snapshot_texts(self, digests: Iterable[str]) -> Iterator[str]:
        """The stored JSON of the snapshots with these digests, read in chunks (for regrade)."""
        wanted = list(dict.fromkeys(digests))
        for start in range(0, len(wanted), 200):
            with self._session("read snapshots") as session:
                chunk = wanted[start : start + 200]
                bodies = list(session.scalars(select(SnapshotRow.body).where(SnapshotRow.digest.in_(chunk))))
            yield from bodies

    def rubric(self, rubric_id: str, digest: str | None = None) -> Rubric:
        """A stored rubric: the version with ``digest``, else the one stored last."""
        query = select(RubricRow).where(RubricRow.rubric_id == rubric_id).order_by(RubricRow.id.desc())
        if digest is not None:
            query = query.where(RubricRow.digest == digest)
        with self._session("read a rubric") as session:
            row = session.scalars(query).first()
            if row is None:
                raise StoreError(f"no rubric {rubric_id!r} in {self.url}")
            return Rubric.model_validate(row.content)

    def rubric_ids(self) -> list[str]:
        with self._session("read rubrics") as session:
            return list(session.scalars(select(RubricRow.rubric_id).distinct().order_by(RubricRow.rubric_id)))

    def students(self) -> list[str]:
        with self._session("read students") as session:
            return list(session.scalars(select(StudentRow.name).order_by(StudentRow.name)))

    def _session(self, doing: str, write: bool = False, job: Job | None = None) -> _Session:
        return _Session(self, doing, write, job)


class AlreadyStored(Exception):
    """``record(once=True)`` found the same snapshot already stored for the student."""


@dataclass(frozen=True)
class Job:
    """A claimed student of a scaled-out batch; ``session`` holds the row lock."""

    id: int
    student: str
    session: Session


class _Session:
    """A session in one transaction whose database errors become a one-line StoreError. With
    a claimed job, the job's session is used and the claim commits it."""

    def __init__(self, store: Store, doing: str, write: bool, job: Job | None = None):
        self.store, self.doing, self.write, self.job = store, doing, write, job

    def __enter__(self) -> Session:
        if self.job is not None:
            return self.job.session
        self.session = Session(self.store.engine, expire_on_commit=False)
        try:
            self.session.begin()
            self.session.connection(execution_options={"write": self.write})  # SQLite: waits for the write lock
        except SQLAlchemyError as exc:
            self.session.close()
            raise StoreError(f"cannot {self.doing} in {self.store.url}: {_why(exc)}") from exc
        return self.session

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self.job is None:
            try:
                if exc is None:
                    self.session.commit()
                else:
                    self.session.rollback()
            except SQLAlchemyError as error:
                exc = error
            finally:
                self.session.close()
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"cannot {self.doing} in {self.store.url}: {_why(exc)}") from exc


def _add(session: Session, attempt: AttemptRow, job: Job | None) -> int:
    session.add(attempt)
    session.flush()
    if job is not None:
        row = session.get(JobRow, job.id)
        assert row is not None
        row.state, row.attempt_id, row.updated_at = "done", attempt.id, datetime.now(UTC)
    return attempt.id


@dataclass(frozen=True)
class Encoded:
    """An outcome as the store writes it: the scores, and every CheckResult as one JSON text.
    Made where the outcome is (regrade workers, too)."""

    score: float
    max_score: float
    results: str


_RESULTS = TypeAdapter(list[CheckResult])


def encode(outcome: Outcome) -> Encoded:
    return Encoded(outcome.score, outcome.max_score, _RESULTS.dump_json(outcome.checks).decode())


def _attempt(row: AttemptRow, checks: bool) -> Attempt:
    graded_at = row.graded_at if row.graded_at.tzinfo else row.graded_at.replace(tzinfo=UTC)  # SQLite drops tz
    error, results = row.error, []
    if checks:
        try:
            results = _RESULTS.validate_json(row.results)
        except ValueError as exc:  # one damaged row is that attempt's error, never the class's
            error = f"its stored results cannot be read ({_first_line(exc)})"
    return Attempt(
        id=row.id,
        student=row.student.name,
        rubric_id=row.rubric.rubric_id,
        rubric_version=row.rubric.version,
        rubric_digest=row.rubric.digest,
        source=row.source,
        graded_at=graded_at,
        grader_version=row.grader_version,
        score=row.score,
        max_score=row.max_score,
        snapshot_digest=row.snapshot_digest,
        error=error,
        checks=results,
        identity=row.identity,
        engine_id=row.engine_id,
        container_ids=tuple(json.loads(row.container_ids)),
    )


def _schema_version(connection: Connection) -> str | None:
    """The schema's revision, by one query of Alembic's version row (Alembic itself is loaded
    only to migrate). Where that query fails (no version table: a new database, or one from
    grader 0.1) the tables are read to tell; a database that cannot be read fails there again."""
    try:
        with connection.begin():  # a read: the common case takes no write lock
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        with connection.begin():
            return _revision(connection)[1]


def _revision(connection: Connection) -> tuple[set[str], str | None]:
    """The tables, and the schema revision (None: no alembic_version table)."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables:
        return tables, None
    return tables, connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _migrate(connection: Connection) -> None:
    """Bring the schema to HEAD. A database from grader 0.1 (tables, no alembic_version)
    is stamped as the baseline first; a database newer than this grader is refused."""
    if connection.dialect.name == "postgresql":
        # Several graders may open a new shared database at once: one migrates, the others wait.
        connection.execute(text("SELECT pg_advisory_xact_lock(4711)"))
    tables, current = _revision(connection)  # again: another grader may have migrated meanwhile
    if current == HEAD:
        return
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"the results database has schema {current}, newer than this grader knows (up to {HEAD}): "
            "upgrade grader to use it"
        )
    if current is None and "attempts" in tables:
        command.stamp(config, "0001")
    command.upgrade(config, "head")
