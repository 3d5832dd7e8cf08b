"""The results store (SQLAlchemy 2.x): students, rubrics, attempts, per-check results and
the snapshot of every attempt. SQLite file by default; PostgreSQL for shared use. The
schema is kept by Alembic migrations; opening a store upgrades an older database."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Text, cast, create_engine, event, exists, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, defer, selectinload

from .. import __version__
from ..errors import StoreError, UsageError
from ..facts import daemon_ids
from ..outcome import CheckResult, Outcome
from ..rubric.model import Rubric
from ..snapshot import Snapshot
from ..text import SHORT, head
from ..util import batched, first_problem
from .schema import AttemptRow, Base, JobRow, RubricRow, SnapshotRow, StudentRow

DEFAULT_DB = "sqlite:///grader.db"
BACKENDS = ("sqlite", "postgresql")  # the databases the store runs on
MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0006"  # the newest migration; tests/test_store.py checks it matches migrations/versions


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


def _row(
    session: Session,
    model: Any,
    key: dict[str, Any],
    values: Callable[[], dict[str, Any]] | None = None,
    unread: Any = None,
) -> Any:
    """The row of ``model`` with this unique ``key``, inserted with ``values()`` when missing
    (made only then); its column ``unread`` is not read."""
    query = select(model).filter_by(**key)
    if unread is not None:
        query = query.options(defer(unread))
    found = session.scalars(query).first()
    if found is None:
        _insert_missing(session, model, {**key, **(values() if values else {})})
        found = session.scalars(query).one()
    return found


def _insert_missing(session: Session, table: Any, *rows: dict[str, Any]) -> None:
    """INSERT each of ``rows`` unless a row with the same unique key exists, safe against
    concurrent writers."""
    dialect = session.get_bind().dialect.name
    # Each dialect's module is imported when used: PostgreSQL's is a tenth of a grade's imports.
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # _backend admits SQLite and PostgreSQL only
        from sqlalchemy.dialects.postgresql import insert
    session.execute(insert(table).on_conflict_do_nothing(), list(rows))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _why(exc: BaseException) -> str:
    """One line; a lock held too long says so (SQLite's own words are only "database is locked")."""
    line = _first_line(exc)
    if "database is locked" in line:
        return f"another grader held the database locked for more than {LOCK_WAIT} s; try again"
    return line


def _backend(url: str) -> str:
    """The database ``url`` names, "sqlite" or "postgresql"; ValueError for any other, and for a
    SQLite URL that is not ``sqlite:///PATH`` with the path as it is: SQLAlchemy decodes ``%20``
    and cuts a path at ``?``, so such a URL would open another file than the one it shows."""
    supported = "the results store is SQLite (sqlite:///FILE) or PostgreSQL (postgresql://USER@HOST/DATABASE)"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {supported}") from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise ValueError(f"{backend} is not supported: {supported}")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("an in-memory database keeps nothing: name a file, e.g. sqlite:///grader.db")
    if backend == "sqlite" and url != f"{parsed.drivername}:///{parsed.database}":
        raise ValueError(
            f"this URL would open {parsed.database!r}: write sqlite:///PATH with the path as it is "
            "(no %-escapes, ?options or host; a path with % or ? is refused)"
        )
    return backend


def _read_only_sqlite(url: str, database: str) -> Any:
    """A connection factory for a SQLite file opened read-only: it works in a folder or on a
    file the user may not write, and sees every committed attempt. Attempts not yet copied from
    the write-ahead log into the file (a batch still writing, a grader killed) are read from
    the log, and a log that cannot be read here is an error, never left out. A file without
    such a log that the user may not write is opened as immutable: SQLite then needs no lock
    or WAL index file next to it."""
    import sqlite3
    from urllib.parse import quote

    path = Path(database).absolute()
    wal = Path(f"{path}-wal")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)

    def logged() -> bool:
        try:
            return wal.stat().st_size > 0
        except OSError:  # no log: every committed attempt is in the file
            return False

    def connect() -> sqlite3.Connection:
        in_log = logged()
        immutable = not (writable or in_log)
        uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        if in_log:
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the log
            except sqlite3.Error as exc:
                connection.close()
                if not logged():  # the last writer just copied it into the file and removed it
                    return connect()
                raise StoreError(
                    f"cannot read the results database {url}: attempts committed to {wal} are not yet in "
                    f"{path.name} and cannot be read from here ({_first_line(exc)}); read it where it may "
                    f"be written, or copy it with its {wal.name} and {path.name}-shm files"
                ) from exc
        return connection

    return connect


class Store:
    def __init__(self, url: str | None = None, *, create: bool = True, read_only: bool = False):
        """Open (and upgrade) the store at ``url``. With ``create=False`` a database that
        does not exist yet is an error instead of being created empty. ``read_only`` (exports,
        reports) opens a SQLite file read-only: it works in a folder or on a file the user
        may not write, and never upgrades the schema."""
        self.url = url or default_url()
        try:
            backend = _backend(self.url)
            # Batch workers each hold a connection while they grade (up to 64 in one process).
            pool = {} if backend == "sqlite" else {"pool_size": 8, "max_overflow": 56}
            self.engine = create_engine(self.url, **pool)
            if backend == "sqlite":
                database = self.engine.url.database or ""
                if not create and not Path(database).exists():
                    raise StoreError(f"no results database at {database} (grade someone first, or pass --db URL)")
                if read_only:
                    self.engine = create_engine(self.url, creator=_read_only_sqlite(self.url, database))
                _sqlite_setup(self.engine, read_only)
            with self.engine.connect() as connection:
                current = _schema_version(connection)
                holds_results = current is not None
                if current is None:  # no version row: a new database, grader 0.1's, or another's
                    with connection.begin():
                        tables, current = _revision(connection)
                        foreign = _foreign(connection, tables) if current is None else None
                    if foreign:
                        raise StoreError(f"{self.url} is not a grader results database: {foreign}")
                    holds_results = "attempts" in tables
                if current != HEAD and read_only:
                    raise StoreError(
                        f"the results database {self.url} has schema {current or 'of grader 0.1'}, not {HEAD}: "
                        "open it once with a grader that may write it (grade, regrade) to upgrade it"
                        if holds_results
                        else f"the results database {self.url} holds no results yet (grade someone first)"
                    )
                if current != HEAD:
                    _foreign_keys(connection, "OFF")
                    with connection.execution_options(write=True).begin():
                        _migrate(connection)
                    _foreign_keys(connection, "ON")
        except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
            raise StoreError(f"cannot open the results database {self.url}: {_why(exc)}") from exc

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
    ) -> int:
        """Store one attempt with its snapshot and per-check results; returns its id. With a
        claimed ``job``, in the claim's transaction, which also marks the job done."""
        new = NewAttempt.of(student, rubric, snapshot, outcome, graded_at)
        with self._session("store the attempt", write=True, job=job) as session:
            attempt = self._attempt(session, student, rubric, source, graded_at)
            _insert_missing(session, SnapshotRow, {"digest": new.digest, "body": new.body})
            _fill(attempt, new)
            return _add(session, attempt, job)

    def record_new(self, attempts: Sequence[NewAttempt], source: str, identity: str) -> list[Attempt | None]:
        """Store imported attempts in one transaction (a live class's many a second commit
        together); for each the Attempt stored (as ``attempts`` would read it back), or None
        when its student already has an attempt of its rubric with that very snapshot (a bundle
        sent again: stored once, however often it is sent, also twice in one call).
        ``identity``: "verified" or "unverified". All or nothing: a StoreError stores none of
        them."""
        with self._session("store the attempts", write=True) as session:
            students = self._locked_students(session, {a.student for a in attempts})
            rubrics = {a.rubric.digest: a.rubric for a in attempts}
            rubric_rows = {digest: self._rubric_row(session, rubric) for digest, rubric in rubrics.items()}
            # Before the snapshots' bodies (some 50 KB each) are sent for nothing.
            stored = (
                select(AttemptRow.student_id, RubricRow.rubric_id, AttemptRow.snapshot_digest)
                .join(AttemptRow.rubric)
                .where(
                    AttemptRow.student_id.in_([s.id for s in students.values()]),
                    AttemptRow.snapshot_digest.in_({a.digest for a in attempts}),
                )
            )
            known = {tuple(row) for row in session.execute(stored)}
            taking: list[NewAttempt] = []
            bodies: dict[str, str] = {}
            for new in attempts:
                key = (students[new.student].id, new.rubric.id, new.digest)
                if key not in known:  # else stored already, or twice in this call
                    known.add(key)
                    taking.append(new)
                    bodies[new.digest] = new.body
            if not taking:
                return [None] * len(attempts)
            _insert_missing(session, SnapshotRow, *({"digest": d, "body": b} for d, b in bodies.items()))
            # One INSERT of plain rows (the ORM's unit of work cost a millisecond an attempt).
            rows = [
                {
                    "student_id": students[new.student].id,
                    "rubric_row_id": rubric_rows[new.rubric.digest].id,
                    "source": source,
                    "identity": identity,
                    "graded_at": _utc(new.graded_at),
                    "grader_version": __version__,
                    **_filled(new),
                }
                for new in taking
            ]
            table = AttemptRow.__table__
            ids = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars()
            made = {
                id(new): _as_read(
                    _Inserted(i, students[new.student], rubric_rows[new.rubric.digest], **row), new.outcome
                )
                for new, row, i in zip(taking, rows, ids, strict=True)
            }
            return [made.get(id(new)) for new in attempts]

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
        under ``rubric``; all in one transaction, written in chunks as ``outcomes`` streams in.
        The rubric is stored with the first outcome: with none, nothing is."""
        now = datetime.now(UTC)
        with self._session("store the regraded results", write=True) as session:
            for chunk in batched(outcomes, 500):
                row = {"rubric_row_id": self._rubric_row(session, rubric).id, "regraded_at": now}
                changes = [
                    {**row, "id": i, "score": e.score, "max_score": e.max_score, "results": e.results} for i, e in chunk
                ]
                session.execute(update(AttemptRow), changes)

    def _attempt(
        self, session: Session, student: str, rubric: Rubric, source: str, graded_at: datetime | None
    ) -> AttemptRow:
        return _new_row(
            _row(session, StudentRow, {"name": student}), self._rubric_row(session, rubric), source, graded_at
        )

    def _locked_students(self, session: Session, names: set[str]) -> dict[str, StudentRow]:
        """The rows of these students (made when missing), locked until the transaction ends
        (PostgreSQL; SQLite's write transactions are serial anyway): two server processes
        storing the same student's bundle take turns, and the second sees the first's attempt.
        Locked in the order of their ids, so that two transactions never wait for each other."""
        _insert_missing(session, StudentRow, *({"name": name} for name in sorted(names)))
        query = select(StudentRow).where(StudentRow.name.in_(names)).order_by(StudentRow.id).with_for_update()
        return {row.name: row for row in session.scalars(query)}

    @staticmethod
    def _rubric_row(session: Session, rubric: Rubric) -> RubricRow:
        # The rubric is dumped only when it is not stored yet, and the stored one is not read
        # back: the live server looks its row up for every transaction.
        def values() -> dict[str, Any]:
            return {"version": rubric.version, "content": rubric.model_dump(mode="json")}

        return _row(session, RubricRow, {"rubric_id": rubric.id, "digest": rubric.digest}, values, RubricRow.content)

    # -- reading ------------------------------------------------------------------------

    def attempts(
        self,
        rubric_id: str | None = None,
        student: str | None = None,
        checks: bool = True,
        ids: Collection[int] | None = None,
        after: int = 0,
    ) -> list[Attempt]:
        """Attempts ordered by student, then time (only those with ``ids``, and those with an id
        above ``after``)."""
        query = (
            _ATTEMPTS.join(AttemptRow.student)
            .join(AttemptRow.rubric)
            .order_by(StudentRow.name, AttemptRow.graded_at, AttemptRow.id)
        )
        if not checks:
            query = query.options(defer(AttemptRow.results))
        if rubric_id is not None:
            query = query.where(RubricRow.rubric_id == rubric_id)
        if student is not None:
            query = query.where(StudentRow.name == student)
        if ids is not None:
            query = query.where(AttemptRow.id.in_(ids))
        if after:
            query = query.where(AttemptRow.id > after)
        with self._session("read attempts") as session:
            return [_attempt(row, graded_at, checks) for row, graded_at in session.execute(query)]

    def attempt(self, attempt_id: int) -> Attempt:
        """One stored attempt (the live server's, as another process stored it)."""
        with self._session("read an attempt") as session:
            found = session.execute(_ATTEMPTS.where(AttemptRow.id == attempt_id)).first()
            if found is None:
                raise StoreError(f"no attempt {attempt_id} in {self.url}")
            return _attempt(*found, True)

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
            body = row.body
        try:
            return Snapshot.from_json(body)
        except ValueError as exc:  # a row damaged or written by hand: the attempt's error, never the class's
            raise StoreError(f"snapshot {digest[:12]} in {self.url} cannot be read ({first_problem(exc)})") from None

    def snapshot_texts(self, digests: Iterable[str]) -> Iterator[str]:
        """The stored JSON of the snapshots with these digests, read in chunks (for regrade)."""
        wanted = list(dict.fromkeys(digests))
        for start in range(0, len(wanted), 200):
            with self._session("read snapshots") as session:
                chunk = wanted[start : start + 200]
                bodies = list(session.scalars(select(SnapshotRow.body).where(SnapshotRow.digest.in_(chunk))))
            yield from bodies

    def rubric(self, rubric_id: str, digest: str | None = None) -> Rubric:
        """A stored rubric: the version with ``digest``, else the one stored last of those that
        have attempts (a version stored without any, by an older regrade, only if none has)."""
        query = (
            select(RubricRow)
            .options(defer(RubricRow.content))  # read apart: its version is named when it cannot be read
            .where(RubricRow.rubric_id == rubric_id)
            .order_by(_HAS_ATTEMPTS.desc(), RubricRow.id.desc())
        )
        if digest is not None:
            query = query.where(RubricRow.digest == digest)
        with self._session("read a rubric") as session:
            row = session.scalars(query).first()
            if row is None:
                raise StoreError(f"no rubric {rubric_id!r} in {self.url}")
            try:
                return Rubric.model_validate(row.content)
            except ValueError as exc:  # a row damaged or written by hand: not JSON, or not a rubric
                why = first_problem(exc)
                raise StoreError(f"rubric {rubric_id!r} v{row.version} in {self.url} cannot be read ({why})") from None

    def rubric_ids(self) -> list[str]:
        """The ids of the rubrics that have attempts."""
        with self._session("read rubrics") as session:
            query = select(RubricRow.rubric_id).where(_HAS_ATTEMPTS).distinct().order_by(RubricRow.rubric_id)
            return list(session.scalars(query))

    def students(self) -> list[str]:
        with self._session("read students") as session:
            return list(session.scalars(select(StudentRow.name).order_by(StudentRow.name)))

    def _session(self, doing: str, write: bool = False, job: Job | None = None) -> _Session:
        return _Session(self, doing, write, job)


_HAS_ATTEMPTS = exists().where(AttemptRow.rubric_row_id == RubricRow.id)  # of a rubric row
# An attempt names its rubric (id, version, digest); the rubric itself, some 20 KB of JSON
# parsed for every attempt read, is read by ``rubric`` alone.
_RUBRIC_NAME = selectinload(AttemptRow.rubric).defer(RubricRow.content)
# Attempts as ``_attempt`` reads them. Their times come as text and ``_time`` parses them: the
# drivers' parsing would fail the whole read on one row's time written by hand (SQLAlchemy's on
# SQLite's text, psycopg's on PostgreSQL's 'infinity'). ``regraded_at`` is not read at all.
_ATTEMPTS = select(AttemptRow, cast(AttemptRow.graded_at, Text)).options(
    selectinload(AttemptRow.student), _RUBRIC_NAME, defer(AttemptRow.graded_at), defer(AttemptRow.regraded_at)
)
_UNKNOWN_TIME = datetime.max.replace(tzinfo=UTC)  # an attempt's time that cannot be read: after any other


@dataclass(frozen=True)
class NewAttempt:
    """An attempt to store (``record``, ``record_new``): a student's snapshot, scored, and what
    the store keeps of the snapshot, made where it was scored (``of``): a checking worker of the
    live class sends it over as text, not as a model."""

    student: str
    rubric: Rubric
    outcome: Outcome
    graded_at: datetime | None  # None: now, when it is stored
    digest: str  # the snapshot's
    body: str  # the snapshot's JSON
    engine_id: str | None
    container_ids: tuple[str, ...]
    encoded: Encoded  # the outcome's

    @classmethod
    def of(
        cls,
        student: str,
        rubric: Rubric,
        snapshot: Snapshot,
        outcome: Outcome,
        graded_at: datetime | None,
        body: str | None = None,
    ) -> NewAttempt:
        """``body``: the snapshot's JSON when it is at hand (a bundle's, as verified), else
        written here."""
        engine_id, container_ids = daemon_ids(snapshot)
        body = body or snapshot.to_json()
        ids = tuple(container_ids)
        return cls(student, rubric, outcome, graded_at, snapshot.digest, body, engine_id, ids, encode(outcome))


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


def _new_row(student: StudentRow, rubric: RubricRow, source: str, graded_at: datetime | None) -> AttemptRow:
    return AttemptRow(
        student=student, rubric=rubric, source=source, graded_at=_utc(graded_at), grader_version=__version__
    )


def _utc(moment: datetime | None) -> datetime:
    """In UTC always: SQLite keeps no offset, and every reader takes a naive time as UTC."""
    return (moment or datetime.now(UTC)).astimezone(UTC)


def _filled(new: NewAttempt) -> dict[str, Any]:
    """An attempt row's columns of ``new``'s snapshot and outcome."""
    encoded = new.encoded
    return {
        "engine_id": new.engine_id,
        "container_ids": json.dumps(list(new.container_ids)),
        "snapshot_digest": new.digest,
        "score": encoded.score,
        "max_score": encoded.max_score,
        "results": encoded.results,
    }


def _fill(attempt: AttemptRow, new: NewAttempt) -> None:
    for column, value in _filled(new).items():
        setattr(attempt, column, value)


class _Inserted(SimpleNamespace):
    """An attempt row as ``record_new`` inserted it, read as an AttemptRow is (an ORM object
    for each cost more than the insert)."""

    def __init__(self, id: int, student: StudentRow, rubric: RubricRow, **columns: Any):  # noqa: A002 - the column
        super().__init__(id=id, student=student, rubric=rubric, error=None, **columns)


def _as_read(row: AttemptRow | _Inserted, outcome: Outcome) -> Attempt:
    """The Attempt an inserted ``row`` of ``outcome`` reads back as (without reading it back)."""
    return replace(_attempt(row, row.graded_at, checks=False), checks=outcome.checks)


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
_IDS = TypeAdapter(list[str])


def encode(outcome: Outcome) -> Encoded:
    return Encoded(outcome.score, outcome.max_score, _RESULTS.dump_json(outcome.checks).decode())


def _time(value: Any) -> datetime | None:
    """A stored time: its text as ``_ATTEMPTS`` reads it (PostgreSQL's in ISO style with an
    offset, SQLite's as SQLAlchemy writes it: in UTC, without an offset, taken as UTC), or an
    inserted row's own; None when it is neither (written by hand, or PostgreSQL's 'infinity',
    which no datetime holds)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _attempt(row: AttemptRow | _Inserted, stored_at: Any, checks: bool) -> Attempt:
    error, results, score, max_score = row.error, [], row.score, row.max_score
    if checks:
        try:
            results = _RESULTS.validate_json(row.results)
        except ValueError as exc:  # one damaged row is that attempt's error, never the class's
            error = f"its stored results cannot be read ({_first_line(exc)})"
    if not all(isinstance(n, int | float) and math.isfinite(n) for n in (score, max_score)):
        error, score, max_score = "its stored score cannot be read", 0.0, 0.0
    try:
        container_ids = tuple(_IDS.validate_json(row.container_ids))
    except ValueError:
        error, container_ids = "its stored container IDs cannot be read", ()
    graded_at = _time(stored_at)
    if graded_at is None:  # sorted after the student's others: their standing says which is damaged
        shown = head(str(stored_at), SHORT)
        error, graded_at = f"attempt {row.id}'s stored time cannot be read ({shown!r})", _UNKNOWN_TIME
    return Attempt(
        id=row.id,
        student=row.student.name,
        rubric_id=row.rubric.rubric_id,
        rubric_version=row.rubric.version,
        rubric_digest=row.rubric.digest,
        source=row.source,
        graded_at=graded_at,
        grader_version=row.grader_version,
        score=score,
        max_score=max_score,
        snapshot_digest=row.snapshot_digest,
        error=error,
        checks=results,
        identity=row.identity,
        engine_id=row.engine_id,
        container_ids=container_ids,
    )


def _schema_version(connection: Connection) -> str | None:
    """The schema's revision, by one query of Alembic's version row (Alembic itself is loaded
    only to migrate); None where that query fails (no version table: a new database, one from
    grader 0.1, another program's), and the caller reads the tables to tell."""
    try:
        with connection.begin():  # a read: the common case takes no write lock
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def _revision(connection: Connection) -> tuple[set[str], str | None]:
    """The tables, and the schema revision (None: no alembic_version table)."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables:
        return tables, None
    return tables, connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _foreign(connection: Connection, tables: set[str]) -> str | None:
    """Why a database without alembic_version is not the grader's, or None when it is: it has
    none of the grader's tables (they are made beside any others), or grader 0.1's tables with
    their columns as that version made them (the 0001 baseline)."""
    if not tables:
        return None
    baseline = _baseline()
    named = sorted(tables & (baseline.keys() | Base.metadata.tables.keys()))
    if not named:
        return None
    found = inspect(connection)
    if set(named) == baseline.keys() and all({c["name"] for c in found.get_columns(t)} == baseline[t] for t in named):
        return None
    return (
        f"it has tables named as the grader's ({', '.join(named)}) but not grader 0.1's, and no alembic_version "
        "to say their schema; pass --db with a database of the grader, or a new one"
    )


def _baseline() -> dict[str, set[str]]:
    """The tables of grader 0.1 and their columns, as migration 0001 makes them."""
    from alembic import command

    engine = create_engine("sqlite://")
    try:
        with engine.connect() as connection, connection.begin():
            command.upgrade(_alembic(connection), "0001")
            found = inspect(connection)
            tables = found.get_table_names()
            return {t: {c["name"] for c in found.get_columns(t)} for t in tables if t != "alembic_version"}
    finally:
        engine.dispose()


def _alembic(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


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
    from alembic.script import ScriptDirectory

    config = _alembic(connection)
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"the results database has schema {current}, newer than this grader knows (up to {HEAD}): "
            "upgrade grader to use it"
        )
    if current is None and "attempts" in tables:
        command.stamp(config, "0001")
    command.upgrade(config, "head")
