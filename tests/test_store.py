"""The results store on SQLite and a real PostgreSQL: round trips, migrations (an old
database is upgraded, a newer one refused), grading modes, regrade, concurrent writers.
Attempts are made from the snapshots recorded on the bench (tests/golden)."""

from __future__ import annotations

import csv
import io
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from bench.system import read_only
from sqlalchemy import create_engine, inspect, text

from grader.errors import StoreError
from grader.evaluate import evaluate
from grader.regrade import regrade
from grader.rubric import load
from grader.snapshot import Snapshot
from grader.standing import PARTIAL, standing, standings
from grader.store import HEAD, MIGRATIONS, Store
from grader.store.schema import Base

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def recorded(case: str) -> Snapshot:
    return Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())


def store_attempt(store: Store, student: str, case: str, minutes: int = 0, rubric_ref: str = "docker-networks") -> int:
    rubric, snapshot = load(rubric_ref), recorded(case)
    return store.record(student, rubric, snapshot, evaluate(rubric, snapshot), "grade", T0 + timedelta(minutes=minutes))


def test_round_trip(db_url: str) -> None:
    store = Store(db_url)
    first = store_attempt(store, "ani", "networks-typo")
    store_attempt(store, "ani", "networks-reference", minutes=5)
    store_attempt(store, "budi", "links-reference", rubric_ref="docker-links")
    rubric = load("docker-networks")
    store.record_error("citra", rubric, "batch", "daemon unreachable: connection refused", T0)

    attempts = store.attempts("docker-networks")
    assert [(a.student, a.ok) for a in attempts] == [("ani", True), ("ani", True), ("citra", False)]
    typo = attempts[0]
    assert typo.id == first and typo.graded_at == T0
    assert typo.checks == evaluate(rubric, recorded("networks-typo")).checks
    assert (typo.score, typo.max_score) == (evaluate(rubric, recorded("networks-typo")).score, rubric_points(rubric))
    assert attempts[1].score == attempts[1].max_score
    assert attempts[2].error == "daemon unreachable: connection refused" and attempts[2].snapshot_digest is None
    assert store.snapshot(typo.snapshot_digest) == recorded("networks-typo")
    assert store.rubric("docker-networks") == rubric
    assert store.rubric_ids() == ["docker-links", "docker-networks"]
    assert store.students() == ["ani", "budi", "citra"]
    with pytest.raises(StoreError, match="no snapshot"):
        store.snapshot("0" * 64)


def rubric_points(rubric) -> float:
    return round(sum(c.points for _, c in rubric.checks()), 2)


def test_migrations_match_the_models(db_url: str) -> None:
    Store(db_url)
    with create_engine(db_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    script = ScriptDirectory(str(MIGRATIONS))
    assert script.get_current_head() == HEAD


def test_a_grader_0_1_database_is_upgraded(db_url: str) -> None:
    """grader 0.1 made its tables with create_all (the 0001 baseline, byte for byte) and had no
    alembic_version: the attempts it stored survive the upgrade and stay readable."""
    from alembic import command
    from alembic.config import Config

    engine = create_engine(db_url)
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("DROP TABLE alembic_version"))
        rubric, snapshot = load("docker-networks"), recorded("networks-typo")
        outcome = evaluate(rubric, snapshot)

        def insert(sql: str, **values: object) -> int:
            return connection.execute(text(sql + " RETURNING id"), values).scalar()

        student = insert("INSERT INTO students (name) VALUES ('ani')")
        rubric_row = insert(
            "INSERT INTO rubrics (rubric_id, version, digest, content) VALUES (:r, :v, :d, :c)",
            r=rubric.id,
            v=rubric.version,
            d=rubric.digest,
            c=rubric.model_dump_json(),
        )
        connection.execute(
            text("INSERT INTO snapshots VALUES (:d, :b)"), {"d": snapshot.digest, "b": snapshot.to_json()}
        )
        attempt = insert(
            "INSERT INTO attempts (student_id, rubric_row_id, snapshot_digest, source, graded_at, grader_version,"
            " score, max_score) VALUES (:st, :r, :d, 'grade', :t, '0.1.0', :s, :m)",
            st=student,
            r=rubric_row,
            d=snapshot.digest,
            t=T0,
            s=outcome.score,
            m=outcome.max_score,
        )
        for c in outcome.checks:
            insert(
                "INSERT INTO check_results (attempt_id, check_id, task, status, points, max_points, result)"
                " VALUES (:a, :i, :t, :st, :p, :m, :r)",
                a=attempt,
                i=c.id,
                t=c.task,
                st=c.status,
                p=c.points,
                m=c.max_points,
                r=c.model_dump_json(),
            )
    engine.dispose()

    store = Store(db_url)
    [old] = store.attempts()
    assert (old.student, old.score, old.checks, old.error) == ("ani", outcome.score, outcome.checks, None)
    store.record_error("ani", rubric, "batch", "timeout")  # the new column works on the upgraded table
    assert [a.ok for a in store.attempts()] == [True, False]


def test_a_newer_database_is_refused(db_url: str) -> None:
    Store(db_url)
    with create_engine(db_url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(StoreError, match="newer than this grader"):
        Store(db_url)


def test_a_missing_sqlite_file_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no results database"):
        Store(f"sqlite:///{tmp_path / 'nothing.db'}", create=False)
    assert not (tmp_path / "nothing.db").exists()


def test_an_unreachable_server_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open the results database"):
        Store("postgresql+psycopg://nobody@/nothing?host=/nonexistent")


def test_modes_final_and_progress(db_url: str) -> None:
    """A checkpoint proved in an early attempt keeps its credit in progress mode only."""
    store = Store(db_url)
    store_attempt(store, "ani", "networks-reference", minutes=0)
    store_attempt(store, "ani", "networks-typo", minutes=10)
    attempts = store.attempts("docker-networks")
    final, progress = standing("ani", attempts, "final"), standing("ani", attempts, "progress")
    later = {c.id: c for c in attempts[1].checks}
    kept = [c.id for c in progress.checks if c.passed and not later[c.id].passed]
    assert final.checks == attempts[1].checks and final.score == attempts[1].score
    assert kept and all(later[i].when == "checkpoint" for i in kept)
    lost_finals = [c.id for c in progress.checks if not c.passed]
    assert lost_finals and all(later[i].when == "final" for i in lost_finals)
    assert progress.score > final.score
    assert final.best == attempts[0].score == attempts[0].max_score


def test_a_self_check_of_one_task_is_not_a_whole_attempt(db_url: str) -> None:
    """`check --task 1` after a whole attempt: in final mode the whole attempt still counts (the
    one task's run scored 100% of that task alone); in progress mode its checks update."""
    store = Store(db_url)
    rubric = load("docker-networks")
    store_attempt(store, "ani", "networks-typo", minutes=0)
    snapshot = recorded("networks-reference")
    one_task = evaluate(rubric, snapshot, task=1)
    store.record("ani", rubric, snapshot, one_task, "check" + PARTIAL, T0 + timedelta(minutes=10))
    whole, partial = store.attempts("docker-networks")
    final = standing("ani", [whole, partial], "final")
    assert final.latest == whole and final.checks == whole.checks
    progress = standing("ani", [whole, partial], "progress")
    assert {c.id: c for c in progress.checks}["backend-network"] == one_task.checks[0]


def test_times_are_stored_in_utc(db_url: str) -> None:
    """A time with an offset (Jakarta, UTC+7) read back is the same moment, not 7 hours off."""
    store = Store(db_url)
    rubric, snapshot = load("docker-networks"), recorded("networks-reference")
    jakarta = datetime(2026, 11, 2, 16, 0, tzinfo=timezone(timedelta(hours=7)))
    store.record("ani", rubric, snapshot, evaluate(rubric, snapshot), "grade", jakarta)
    [attempt] = store.attempts("docker-networks")
    assert attempt.graded_at == jakarta and attempt.graded_at.utcoffset() == timedelta(0)


def test_a_time_that_cannot_be_read_is_that_attempts_error(tmp_path: Path) -> None:
    """A time written by hand in SQLite: that attempt is an error naming it, read after the
    student's others (when it was is unknown); the rest of the class is read as it was."""
    db = tmp_path / "class.db"
    store = Store(f"sqlite:///{db}")
    forged = store_attempt(store, "ani", "networks-typo")
    store_attempt(store, "ani", "networks-reference", minutes=5)
    store_attempt(store, "budi", "networks-typo", minutes=10)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE attempts SET graded_at = 'not a date' WHERE id = ?", (forged,))
    why = f"attempt {forged}'s stored time cannot be read ('not a date')"
    assert store.attempt(forged).error == why  # the live server's read of one attempt
    ani, budi = standings(store.attempts("docker-networks"), "final")
    assert [a.id for a in ani.attempts][-1] == forged and ani.error == why
    assert ani.latest and ani.score == ani.max_score  # the reference, still counted
    assert budi.error is None and budi.attempts[0].graded_at == T0 + timedelta(minutes=10)


INFINITIES = ["infinity", "-infinity"]  # what a timestamptz takes beyond any date


@pytest.mark.postgres
def test_an_infinite_postgresql_time_is_that_attempts_error(pg_url: str) -> None:
    """PostgreSQL's timestamptz takes 'infinity' and '-infinity', which no Python datetime
    holds (psycopg refuses to read them, and the whole read failed): written by hand, each is
    its attempt's error, as a forged SQLite time is; the rest of the class is read as it was."""
    store = Store(pg_url)
    forged = {store_attempt(store, "ani", "networks-typo", minutes=n): t for n, t in enumerate(INFINITIES)}
    store_attempt(store, "ani", "networks-reference", minutes=5)
    store_attempt(store, "budi", "networks-typo", minutes=10)
    with store.engine.begin() as connection:
        for attempt_id, time in forged.items():
            connection.execute(text(f"UPDATE attempts SET graded_at = '{time}' WHERE id = {attempt_id}"))
    why = {i: f"attempt {i}'s stored time cannot be read ({time!r})" for i, time in forged.items()}
    assert {i: store.attempt(i).error for i in forged} == why  # the live server's read of one attempt
    ani, budi = standings(store.attempts("docker-networks"), "final")
    assert [a.error for a in ani.attempts] == [None, *why.values()]  # after the reference, by id
    assert ani.latest and ani.score == ani.max_score  # the reference, still counted
    assert budi.error is None and budi.attempts[0].graded_at == T0 + timedelta(minutes=10)


def test_tasks_are_numbered_as_their_titles() -> None:
    """Lab 2's step 8 only explores (nothing to check): its rubric's last task is "9. Disconnect"."""
    rubric = load("docker-networks")
    assert rubric.numbers == [1, 2, 3, 4, 5, 6, 7, 9]
    assert rubric.task(9).title_in() == "9. Disconnect" and rubric.task(8) is None
    assert {n for n, _ in rubric.checks()} == set(rubric.numbers)
    raw = rubric.model_dump(exclude_none=True)
    for task in raw["tasks"]:
        task["title"] = "a step"
    assert type(rubric).model_validate(raw).numbers == list(range(1, 9))


def test_an_unreachable_daemon_is_not_a_zero(db_url: str) -> None:
    store = Store(db_url)
    rubric = load("docker-networks")
    store_attempt(store, "ani", "networks-typo")
    store.record_error("ani", rubric, "batch", "daemon unreachable", T0 + timedelta(hours=1))
    store.record_error("budi", rubric, "batch", "TLS refused", T0)
    ani, budi = standings(store.attempts("docker-networks"), "final")
    assert ani.error == "daemon unreachable" and ani.latest is not None and ani.score == ani.latest.score > 0
    assert budi.error == "TLS refused" and budi.latest is None and budi.best is None and budi.checks == []


def test_regrade_uses_the_current_rubric(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    store_attempt(store, "ani", "networks-typo")
    store_attempt(store, "budi", "networks-reference")
    store.record_error("citra", load("docker-networks"), "batch", "unreachable")
    before = {a.student: a for a in store.attempts("docker-networks")}
    source = (Path(__file__).parent.parent / "rubrics" / "docker-networks.yaml").read_text()
    fixed = tmp_path / "docker-networks.yaml"
    fixed.write_text(source.replace('version: "1"', 'version: "9"', 1).replace("points: 2", "points: 3"))
    new = load(fixed)

    done = regrade(str(fixed), db_url=db_url)

    assert (done.attempts, done.students, done.skipped) == (2, 2, 1)
    after = {a.student: a for a in store.attempts("docker-networks")}
    for name in ("ani", "budi"):
        assert after[name].checks == evaluate(new, store.snapshot(after[name].snapshot_digest)).checks
        assert (after[name].rubric_digest, after[name].graded_at) == (new.digest, before[name].graded_at)
    assert after["budi"].score == rubric_points(new) > before["budi"].score
    assert {name for name, _, _ in done.changed} == {"ani", "budi"}
    assert store.rubric("docker-networks", before["ani"].rubric_digest) == load("docker-networks")  # kept
    assert after["citra"].error == "unreachable"


def _writer(url: str, student: str) -> None:
    store = Store(url)
    for n in range(10):
        store_attempt(store, student, "networks-typo", minutes=n)


def test_concurrent_writers(db_url: str) -> None:
    Store(db_url)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(db_url, f"s{n}")) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    attempts = Store(db_url).attempts()
    assert len(attempts) == 40 and len({a.id for a in attempts}) == 40


def test_regrade_in_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many snapshots are evaluated in worker processes: the same results as in-process."""
    db_url = f"sqlite:///{tmp_path / 'grader.db'}"
    store = Store(db_url)
    for n, case in enumerate(["networks-typo", "networks-reference", "networks-forgot-connect"]):
        store_attempt(store, f"s{n}", case)
    monkeypatch.setattr("grader.regrade.IN_PROCESS", 0)
    done = regrade("docker-networks", db_url=db_url)
    assert done.attempts == 3 and done.changed == []
    for attempt in store.attempts():
        assert attempt.checks == evaluate(load("docker-networks"), store.snapshot(attempt.snapshot_digest)).checks


def _export_read_only(folder: Path, db: str) -> subprocess.CompletedProcess[str]:
    """``grader export`` of the store with its folder mounted read-only (see bench.system)."""
    command = [sys.executable, "-m", "grader.cli", "export", "--db", db, "--format", "csv"]
    return subprocess.run(read_only(folder, *command), capture_output=True, text=True, timeout=120)


def _five_students(path: Path) -> sqlite3.Connection:
    """Five students' attempts in the SQLite store at ``path``: four in the file, the fifth
    committed to the write-ahead log only. The returned connection is the writer still open,
    so that nothing copies the log into the file."""
    store = Store(f"sqlite:///{path}")
    writer = sqlite3.connect(path)
    for n in range(4):
        store_attempt(store, f"s{n}", "networks-typo")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store_attempt(store, "s4", "networks-reference")
    store.engine.dispose()
    assert Path(f"{path}-wal").stat().st_size > 0
    return writer


@pytest.mark.parametrize("copied", [False, True], ids=["writer-open", "copy"])
def test_a_read_only_store_shows_every_committed_attempt(tmp_path: Path, copied: bool) -> None:
    """A store the user cannot write (a read-only mount: root ignores file modes) while a batch
    is still writing it, or a copy of it with its -wal and -shm files: the attempt committed
    to the log only is exported too (it was left out without a word)."""
    folder = tmp_path / "class"
    folder.mkdir()
    writer = _five_students(folder / "g.db")
    if copied:
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in ("g.db", "g.db-wal", "g.db-shm"):
            shutil.copyfile(folder / name, copy / name)
        writer.close()
        folder = copy
    done = _export_read_only(folder, f"sqlite:///{folder / 'g.db'}")
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in csv.reader(io.StringIO(done.stdout))][1:] == ["s0", "s1", "s2", "s3", "s4"]
    assert "Traceback" not in done.stderr


def test_a_log_that_cannot_be_read_is_said_not_left_out(tmp_path: Path) -> None:
    """A copy of the file and its -wal without the -shm, on a read-only mount: SQLite cannot
    read the log there, and the export says so (exit 4) instead of showing four students."""
    folder, copy = tmp_path / "class", tmp_path / "copy"
    folder.mkdir(), copy.mkdir()
    writer = _five_students(folder / "g.db")
    for name in ("g.db", "g.db-wal"):
        shutil.copyfile(folder / name, copy / name)
    writer.close()
    db = f"sqlite:///{copy / 'g.db'}"
    done = _export_read_only(copy, db)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr.splitlines() == [
        f"grader: cannot read the results database {db}: attempts committed to {copy / 'g.db-wal'} are not yet "
        "in g.db and cannot be read from here (unable to open database file); read it where it may be written, "
        "or copy it with its g.db-wal and g.db-shm files"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///{tmp}/pct%20.db", "this URL would open '{tmp}/pct .db': write sqlite:///PATH with the path as it"),
        ("sqlite:///{tmp}/q?mode=ro.db", "this URL would open '{tmp}/q': write sqlite:///PATH"),
        ("sqlite://localhost/{tmp}/g.db", "this URL would open '{tmp}/g.db': write sqlite:///PATH"),
        ("sqlite://", "an in-memory database keeps nothing: name a file, e.g. sqlite:///grader.db"),
        ("sqlite:///:memory:", "an in-memory database keeps nothing"),
        ("mysql://grader@localhost/class", "mysql is not supported: the results store is SQLite (sqlite:///FILE) or"),
        ("class.db", "not a database URL: the results store is SQLite (sqlite:///FILE) or PostgreSQL"),
    ],
)
def test_a_database_url_means_the_file_it_names_or_is_refused(tmp_path: Path, url: str, message: str) -> None:
    url, message = url.format(tmp=tmp_path), message.format(tmp=tmp_path)
    with pytest.raises(StoreError) as raised:
        Store(url)
    assert str(raised.value).startswith(f"cannot open the results database {url}: {message}")
    assert list(tmp_path.iterdir()) == []


def test_a_path_with_a_space_is_written_as_it_is(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/a class.db")
    store_attempt(store, "ani", "networks-typo")
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == ["a class.db"]


def test_a_database_with_tables_of_its_own_is_refused(db_url: str) -> None:
    """An `attempts` table of another program and no alembic_version: refused in one line (it
    was taken for grader 0.1's and the migration died in a KeyError), and left as it was."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE attempts (id INTEGER PRIMARY KEY, who TEXT)"))
    for opening in (lambda: Store(db_url), lambda: Store(db_url, create=False, read_only=True)):
        with pytest.raises(StoreError) as raised:
            opening()
        assert str(raised.value) == (
            f"{db_url} is not a grader results database: it has tables named as the grader's (attempts) but not "
            "grader 0.1's, and no alembic_version to say their schema; pass --db with a database of the grader, "
            "or a new one"
        )
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) == {"attempts"}
    engine.dispose()


def test_the_grader_s_tables_are_made_beside_others(db_url: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    engine.dispose()
    store_attempt(Store(db_url), "ani", "networks-typo")
    assert [a.student for a in Store(db_url, read_only=True).attempts()] == ["ani"]


def test_regrade_stores_nothing_for_a_rubric_without_attempts(db_url: str, tmp_path: Path) -> None:
    """A regrade that matched no attempt stored its rubric, and from then on every export
    without --rubric failed ("pass --rubric ID")."""
    store = Store(db_url)
    store_attempt(store, "ani", "networks-typo")
    before = store.rubric("docker-networks")
    source = (Path(__file__).parent.parent / "rubrics" / "docker-networks.yaml").read_text()
    fixed = tmp_path / "docker-networks.yaml"
    fixed.write_text(source.replace("points: 2", "points: 3"))

    assert regrade("docker-links", db_url=db_url).attempts == 0
    assert regrade(str(fixed), db_url=db_url, student="nobody").attempts == 0

    with create_engine(db_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM rubrics")).scalar() == 1
    assert store.rubric_ids() == ["docker-networks"]
    assert store.rubric("docker-networks") == before
