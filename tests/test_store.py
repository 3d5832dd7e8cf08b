"""The results store on SQLite and a real PostgreSQL: round trips, migrations (an old
database is upgraded, a newer one refused), grading modes, regrade, concurrent writers.
Attempts are made from the snapshots recorded on the bench (tests/golden)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

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
