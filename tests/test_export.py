"""Exports of the store (CSV gradebook, JSON, Gradescope results.json) on SQLite and a real
PostgreSQL, filled with the snapshots recorded on the bench (tests/golden)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.errors import UsageError
from grader.evaluate import evaluate
from grader.export import export
from grader.rubric import load
from grader.snapshot import Snapshot
from grader.store import Store

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EVIL = '=HYPERLINK("http://example.invalid/?x","click")'


def recorded(case: str) -> Snapshot:
    return Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())


def store_attempt(store: Store, student: str, case: str, minutes: int = 0, rubric_ref: str = "docker-networks") -> int:
    rubric, snapshot = load(rubric_ref), recorded(case)
    return store.record(student, rubric, snapshot, evaluate(rubric, snapshot), "grade", T0 + timedelta(minutes=minutes))


@pytest.fixture
def class_db(db_url: str) -> str:
    """ani made a typo, then fixed it; budi forgot to connect, then his daemon was unreachable;
    citra was never reachable; EVIL is a student name meant to be a spreadsheet formula;
    dewi only did lab 1."""
    store = Store(db_url)
    rubric = load("docker-networks")
    store_attempt(store, "ani", "networks-typo")
    store_attempt(store, "ani", "networks-reference", minutes=30)
    store_attempt(store, "budi", "networks-forgot-connect")
    store.record_error("budi", rubric, "batch", "daemon unreachable: connection refused", T0 + timedelta(hours=1))
    store.record_error("citra", rubric, "batch", "TLS handshake failed", T0)
    store_attempt(store, EVIL, "networks-typo")
    store_attempt(store, "dewi", "links-reference", rubric_ref="docker-links")
    return db_url


def outcome(case: str, rubric_ref: str = "docker-networks"):
    return evaluate(load(rubric_ref), recorded(case))


def per_task(case: str) -> list[str]:
    rubric = load("docker-networks")
    checks = outcome(case).checks
    return [f"{sum(c.points for c in checks if c.task == n):g}" for n in rubric.numbers]


def test_csv_gradebook(class_db: str) -> None:
    rubric = load("docker-networks")
    text = export("csv", db_url=class_db, rubric_id="docker-networks")
    header, *rows = list(csv.reader(io.StringIO(text)))
    titles = [t.title_in() for t in rubric.tasks]
    assert header == ["student", *titles, "total", "max", "status", "graded_at", "identity", "same_daemon_as"]
    table = {row[0]: row[1:] for row in rows}
    same = {name: row.pop() for name, row in table.items()}  # same_daemon_as
    n = len(rubric.tasks)
    # dewi is in the store (lab 1) but never attempted lab 2: a row all the same.
    assert list(table) == ["'" + EVIL, "ani", "budi", "citra", "dewi"]
    full = f"{outcome('networks-reference').max_score:g}"
    assert table["ani"] == [*per_task("networks-reference"), full, full, "graded", "2026-11-02T09:30:00+00:00", "live"]
    # budi's latest attempt failed: the reason is shown, the score is that of his graded attempt, not 0.
    budi = outcome("networks-forgot-connect")
    assert table["budi"][n:] == [
        f"{budi.score:g}",
        full,
        "unreachable: daemon unreachable: connection refused",
        "2026-11-02T10:00:00+00:00",
        "live",
    ]
    assert table["budi"][:n] == per_task("networks-forgot-connect") and 0 < budi.score < budi.max_score
    # citra was never graded: empty points, never zero.
    assert table["citra"] == [""] * n + ["", full, "unreachable: TLS handshake failed", "2026-11-02T09:00:00+00:00", ""]
    assert table["dewi"] == [""] * n + ["", full, "not attempted", "", ""]
    assert table["'" + EVIL][n] == f"{outcome('networks-typo').score:g}"
    assert sum(float(p) for p in table["ani"][:n]) == float(full)
    # ani's first attempt and EVIL's are one recorded daemon: each is flagged (the name escaped).
    assert "'" + EVIL in same["ani"].split(", ") and "ani" in same["'" + EVIL].split(", ")
    assert same["citra"] == same["dewi"] == ""  # no attempt of lab 2 from any daemon


def test_csv_formula_injection_is_escaped() -> None:
    from grader.export import _cells

    cells = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "alice", "1.5", ""]
    # a tab or a carriage return is shown escaped (text.printable): no longer a formula's start
    assert _cells(cells) == ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "\\tx", "\\rx", "alice", "1.5", ""]


def test_json_export(class_db: str) -> None:
    students = {s["student"]: s for s in json.loads(export("json", db_url=class_db, rubric_id="docker-networks"))}
    assert list(students) == [EVIL, "ani", "budi", "citra", "dewi"]
    ani = students["ani"]
    reference = outcome("networks-reference")
    assert ani["rubric"] == {"id": "docker-networks", "version": "1"} and ani["mode"] == "final"
    assert (ani["status"], ani["error"], ani["score"], ani["max_score"]) == ("graded", None, 25.5, 25.5)
    assert ani["attempts"] == 2 and ani["snapshot_digest"] == recorded("networks-reference").digest
    engine = recorded("networks-reference").engine  # the engine the counted attempt was made on
    assert ani["engine"]["version"] == engine["Version"] and ani["engine"]["api_version"] == engine["ApiVersion"]
    assert students["dewi"]["engine"] is None  # never graded on lab 2
    assert [c["id"] for c in ani["checks"]] == [c.id for c in reference.checks]
    assert set(ani["checks"][0]) == {
        "id",
        "title",
        "task",
        "status",
        "passed",
        "points",
        "max_points",
        "expected",
        "actual",
        "message",
        "hint",
    }
    budi = students["budi"]
    assert budi["status"] == "unreachable" and budi["error"] == "daemon unreachable: connection refused"
    assert budi["score"] == outcome("networks-forgot-connect").score > 0
    citra = students["citra"]
    assert (citra["status"], citra["score"], citra["checks"]) == ("unreachable", None, [])
    assert students["dewi"]["status"] == "not attempted" and students["dewi"]["score"] is None


def test_progress_mode_keeps_checkpoints(class_db: str) -> None:
    """A full attempt, then one with a typo: progress mode keeps the checkpoints proved first."""
    store = Store(class_db)
    store_attempt(store, "eko", "networks-reference")
    store_attempt(store, "eko", "networks-typo", minutes=10)
    final, progress = (
        {s["student"]: s for s in json.loads(export("json", db_url=class_db, rubric_id="docker-networks", mode=m))}
        for m in ("final", "progress")
    )
    assert final["eko"]["score"] == outcome("networks-typo").score < progress["eko"]["score"]
    assert progress["eko"]["mode"] == "progress"


def test_gradescope_results(class_db: str) -> None:
    rubric = load("docker-networks")
    results = json.loads(export("gradescope", db_url=class_db, rubric_id="docker-networks", student=EVIL))
    typo = outcome("networks-typo")
    assert set(results) == {"score", "max_score", "output", "visibility", "tests"}
    assert (results["score"], results["max_score"], results["visibility"]) == (typo.score, typo.max_score, "visible")
    tests = results["tests"]
    assert len(tests) == len(rubric.checks())
    assert round(sum(t["score"] for t in tests), 2) == results["score"]
    assert round(sum(t["max_score"] for t in tests), 2) == results["max_score"]
    assert {t["status"] for t in tests} == {"passed", "failed"}
    fields = {"name", "name_format", "number", "score", "max_score", "status", "output", "visibility"}
    assert all(set(t) == fields for t in tests)
    by_name = {t["name"]: t for t in tests}
    for c in typo.checks:
        test = by_name[c.title]
        assert (test["score"], test["status"]) == (c.points, "passed" if c.passed else "failed")
    assert tests[0]["number"] == "1.1" and tests[2]["number"] == "2.2"
    assert f"{typo.score:g}/{typo.max_score:g}" in results["output"]


def test_gradescope_never_scores_an_unreachable_daemon_zero(class_db: str) -> None:
    results = json.loads(export("gradescope", db_url=class_db, rubric_id="docker-networks", student="citra"))
    assert "score" not in results and results["tests"] == []
    assert "TLS handshake failed" in results["output"]
    budi = json.loads(export("gradescope", db_url=class_db, rubric_id="docker-networks", student="budi"))
    assert budi["score"] == outcome("networks-forgot-connect").score and "connection refused" in budi["output"]


def test_usage_errors(class_db: str) -> None:
    with pytest.raises(UsageError, match="needs --student"):
        export("gradescope", db_url=class_db, rubric_id="docker-networks")
    with pytest.raises(UsageError, match="holds rubrics: docker-links, docker-networks"):
        export("csv", db_url=class_db)
    with pytest.raises(UsageError, match="no student 'zed'"):
        export("csv", db_url=class_db, rubric_id="docker-networks", student="zed")
    with pytest.raises(UsageError, match="dewi has no attempt of docker-networks"):
        export("gradescope", db_url=class_db, rubric_id="docker-networks", student="dewi")


def test_cli_export(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    store_attempt(Store(db), "ani", "networks-typo")
    runner = CliRunner()
    shown = runner.invoke(main, ["export", "--db", db, "--format", "csv"])  # the only rubric stored
    assert shown.exit_code == 0, shown.output
    out = tmp_path / "grades.csv"
    written = runner.invoke(main, ["export", "--db", db, "--format", "csv", "--out", str(out)])
    assert written.exit_code == 0 and written.stdout == ""
    assert out.read_text() == shown.stdout
    assert shown.stdout.splitlines()[1].startswith("ani,0,")
    missing = runner.invoke(main, ["export", "--db", db, "--format", "gradescope"])
    assert missing.exit_code == 2 and "needs --student" in missing.stderr


# -- LMS gradebooks and PrairieLearn ----------------------------------------------------------

# PrairieLearn's external grader results (docs/externalGrading.md, "Grading results"): a gradable
# result has score in [0, 1]; tests[] may carry these fields; gradable false takes format_errors.
PRAIRIELEARN_TOP = {"gradable", "score", "message", "output", "images", "tests", "format_errors"}
PRAIRIELEARN_TEST = {"name", "description", "points", "max_points", "message", "output", "images"}
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def roster(tmp_path: Path, *lines: list[str], delimiter: str = ",") -> Path:
    path = tmp_path / "class.csv"
    with path.open("w", newline="") as file:
        csv.writer(file, delimiter=delimiter).writerows(lines)
    return path


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_prairielearn_results(class_db: str) -> None:
    rubric, typo = load("docker-networks"), outcome("networks-typo")
    results = json.loads(export("prairielearn", db_url=class_db, rubric_id="docker-networks", student="ani"))
    assert set(results) <= PRAIRIELEARN_TOP and results["gradable"] is True
    reference = outcome("networks-reference")
    assert results["score"] == 1.0 and f"{reference.score:g}/{reference.max_score:g}" in results["message"]
    evil = json.loads(export("prairielearn", db_url=class_db, rubric_id="docker-networks", student=EVIL))
    assert 0 < evil["score"] == round(typo.score / typo.max_score, 4) < 1
    tests = evil["tests"]
    assert len(tests) == len(rubric.checks()) and all(set(t) <= PRAIRIELEARN_TEST for t in tests)
    assert round(sum(t["points"] for t in tests), 2) == typo.score
    assert round(sum(t["max_points"] for t in tests), 2) == typo.max_score
    first = tests[0]
    assert first["name"] == "bridge network backend-network exists" and first["description"] == "1. Create a network"
    assert first["message"] == "no network backend-network (found 'backend_network': a typo?)"
    assert "docker network create backend-network" in first["output"]


def test_prairielearn_an_unreachable_daemon_is_not_gradable(class_db: str) -> None:
    citra = json.loads(export("prairielearn", db_url=class_db, rubric_id="docker-networks", student="citra"))
    assert citra["gradable"] is False and "score" not in citra and set(citra) <= PRAIRIELEARN_TOP
    assert any("TLS handshake failed" in error for error in citra["format_errors"])
    # budi's latest attempt failed, his earlier one counts: gradable, with why in the message.
    budi = json.loads(export("prairielearn", db_url=class_db, rubric_id="docker-networks", student="budi"))
    assert budi["gradable"] is True and budi["score"] > 0 and "connection refused" in budi["message"]


def test_prairielearn_in_indonesian(class_db: str) -> None:
    results = export("prairielearn", db_url=class_db, rubric_id="docker-networks", student=EVIL, lang="id")
    first = json.loads(results)["tests"][0]
    assert first["name"] == "jaringan bridge backend-network ada" and first["description"] == "1. Membuat jaringan"
    assert first["message"] == "tidak ada jaringan backend-network (ada 'backend_network': salah ketik?)"


def test_moodle_gradebook(class_db: str, tmp_path: Path) -> None:
    """Moodle's grade import maps an identifier column (Email address -> useremail) and a grade
    column per grade item; an empty grade is left as it was."""
    names = ["ani", "budi", "citra", "dewi", EVIL, "fajar"]
    listed = roster(tmp_path, ["student", "email"], *[[n, f"{n[:4]}@example.edu"] for n in names])
    header, *body = rows(export("moodle", db_url=class_db, rubric_id="docker-networks", roster=listed))
    assert header == ["Email address", "Full name", "Docker networks (embedded DNS)"]
    table = {row[1]: row for row in body}
    assert table["ani"] == ["ani@example.edu", "ani", "25.5"]
    assert table["citra"] == ["citr@example.edu", "citra", ""] and table["dewi"][2] == ""  # never a zero
    assert table["fajar"] == ["faja@example.edu", "fajar", ""]  # in the roster only: not attempted
    assert table["'" + EVIL][0] == "'=HYP@example.edu"  # escaped, as every cell
    by_id = roster(tmp_path, ["student", "sis_id"], *[[n, str(1001 + i)] for i, n in enumerate(names)], delimiter=";")
    header, *body = rows(export("moodle", db_url=class_db, rubric_id="docker-networks", roster=by_id, per_check=True))
    assert header[:3] == ["ID number", "Full name", "Docker networks (embedded DNS)"]
    assert header[3:] == [c.id for _, c in load("docker-networks").checks()]
    ani = next(row for row in body if row[1] == "ani")
    assert sum(float(p) for p in ani[3:]) == float(ani[2]) == 25.5


def test_canvas_gradebook(class_db: str, tmp_path: Path) -> None:
    """Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then one
    column per assignment; a Points Possible row as its own export has."""
    names = ["ani", "budi", "citra", "dewi", EVIL]
    listed = roster(tmp_path, ["student", "sis_id", "email"], *[[n, str(1001 + i), ""] for i, n in enumerate(names)])
    text = export("canvas", db_url=class_db, rubric_id="docker-networks", roster=listed, per_check=True)
    header, possible, *body = rows(text)
    checks = [c for _, c in load("docker-networks").checks()]
    assert header == [*CANVAS_HEADER, "Docker networks (embedded DNS)", *[c.id for c in checks]]
    assert possible == ["Points Possible", "", "", "", "", "25.5", *[f"{c.points:g}" for c in checks]]
    table = {row[0]: row for row in body}
    assert table["ani"][:6] == ["ani", "", "1001", "", "", "25.5"]
    assert table["citra"][2] == "1003" and table["citra"][5:] == [""] * (1 + len(checks))


def test_an_lms_needs_an_identifier_for_everyone(class_db: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs --roster FILE"):
        export("moodle", db_url=class_db, rubric_id="docker-networks")
    no_ids = roster(tmp_path, ["student"], ["ani"])
    with pytest.raises(UsageError, match="no email or sis_id column"):
        export("moodle", db_url=class_db, rubric_id="docker-networks", roster=no_ids)
    partial = roster(tmp_path, ["student", "sis_id"], ["ani", "1"], ["budi", "2"])
    with pytest.raises(UsageError, match=r"no sis_id for .*citra.* \(canvas could not match them\)"):
        export("canvas", db_url=class_db, rubric_id="docker-networks", roster=partial)
    with pytest.raises(UsageError, match="--roster is for"):
        export("csv", db_url=class_db, rubric_id="docker-networks", roster=partial)
    with pytest.raises(UsageError, match="--per-check adds columns to a CSV"):
        export("json", db_url=class_db, rubric_id="docker-networks", per_check=True)


def test_csv_per_check_keeps_every_column(class_db: str) -> None:
    header, *body = rows(export("csv", db_url=class_db, rubric_id="docker-networks", per_check=True))
    checks = [c.id for _, c in load("docker-networks").checks()]
    n = len(load("docker-networks").tasks)
    assert header[n + 1 : n + 7] == ["total", "max", "status", "graded_at", "identity", "same_daemon_as"]
    assert header[n + 7 :] == checks
    ani = next(row for row in body if row[0] == "ani")
    assert sum(float(p) for p in ani[n + 7 :]) == float(ani[n + 1])


def test_cli_export_language_from_the_locale_and_an_unwritable_out(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    store_attempt(Store(db), "ani", "networks-typo")
    args = ["export", "--db", db, "--format", "json"]
    said = CliRunner().invoke(main, args, env={"LANG": "id_ID.UTF-8", "LC_ALL": "", "LANGUAGE": ""})
    assert said.exit_code == 0 and "tidak ada jaringan backend-network" in said.stdout
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file" / "grades.csv", tmp_path / "missing" / "grades.csv", tmp_path):
        refused = CliRunner().invoke(
            main, ["export", "--db", "sqlite:///nowhere.db", "--format", "csv", "--out", str(out)]
        )
        [line] = refused.stderr.splitlines()
        assert refused.exit_code == 2 and line.startswith(f"grader: cannot write {out}: "), refused.stderr


def test_a_rubric_stored_without_attempts_is_not_chosen(db_url: str) -> None:
    """A store where an older regrade stored rubrics that no attempt uses (lab 1's, and a
    newer version of lab 2's): export without --rubric still picks lab 2, as graded."""
    store = Store(db_url)
    store_attempt(store, "ani", "networks-typo")
    graded = load("docker-networks")
    newer = graded.model_copy(update={"version": "9", "title": "not graded with"})
    with store._session("pollute", write=True) as session:
        for rubric in (load("docker-links"), newer):
            Store._rubric_row(session, rubric)
    rows = list(csv.reader(io.StringIO(export("csv", db_url=db_url))))
    assert rows[0][1:-6] == [t.title_in() for t in graded.tasks] and [r[0] for r in rows[1:]] == ["ani"]
    assert json.loads(export("json", db_url=db_url))[0]["rubric"]["version"] == graded.version


def test_csv_shows_invisible_characters_escaped(tmp_path: Path) -> None:
    """A bidi override in a student's name would reverse the rest of their row in a spreadsheet;
    an escape or a zero-width space would hide in it: each is written as the terminal shows it."""
    db = f"sqlite:///{tmp_path / 'class.db'}"
    store = Store(db)
    store_attempt(store, "evil\u202eexe.txt", "networks-typo")
    store_attempt(store, "zero\u200bwidth\x1b[2J", "networks-reference")
    cells = [row[0] for row in rows(export("csv", db_url=db))[1:]]
    assert cells == ["evil\\u202eexe.txt", "zero\\u200bwidth\\x1b[2J"]


def test_a_damaged_row_is_that_students_error_and_the_export_completes(tmp_path: Path) -> None:
    from test_report import DAMAGE, damaged_store

    damaged_store(tmp_path / "class.db")
    db = f"sqlite:///{tmp_path / 'class.db'}"
    said = {row[0]: row for row in rows(export("csv", db_url=db))[1:]}
    n = len(load("docker-networks").tasks)
    for student in ("citra", "dewi", "eko", "gita"):  # what of their attempt cannot be read, said in their row
        assert said[student][n + 3].startswith(f"unreachable: {DAMAGE[student][2]}")
    assert said["fajar"][n + 3] == "graded" and said["ani"][n + 3] == "graded"
    books = {s["student"]: s for s in json.loads(export("json", db_url=db))}
    assert "cannot be read (EOF while parsing" in books["budi"]["engine"]["error"]  # its snapshot
    assert books["fajar"]["engine"]["version"] and books["fajar"]["status"] == "graded"


@pytest.mark.parametrize("content", ["not json", '{"id": 5}'])
def test_a_damaged_rubric_is_one_line_and_the_other_labs_export(tmp_path: Path, content: str) -> None:
    """A gradebook needs its rubric (tasks, maximum): one that cannot be read is the store's
    error, exit 4; another lab of the same store still exports."""
    from test_report import damaged_rubric_store

    why = damaged_rubric_store(tmp_path / "class.db", content)
    db = f"sqlite:///{tmp_path / 'class.db'}"
    damaged = CliRunner().invoke(main, ["export", "--db", db, "--format", "csv", "--rubric", "docker-networks"])
    assert damaged.exit_code == 4 and damaged.stderr == f"grader: {why}\n"
    links = CliRunner().invoke(main, ["export", "--db", db, "--format", "csv", "--rubric", "docker-links"])
    assert links.exit_code == 0 and links.stdout.splitlines()[2].startswith("budi,4,2,2,2,5,3,1,19,19,graded,")


def test_an_export_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """A full disk, to --out or to stdout: exit 2 and one line, no traceback."""
    db = f"sqlite:///{tmp_path / 'class.db'}"
    store_attempt(Store(db), "ani", "networks-typo")
    full = CliRunner().invoke(main, ["export", "--db", db, "--format", "csv", "--out", "/dev/full"])
    assert full.exit_code == 2 and full.stderr == "grader: cannot write /dev/full: No space left on device\n"
    with open("/dev/full", "w") as stdout:
        run = subprocess.run(
            [sys.executable, "-c", "from grader.cli import main; main()", "export", "--db", db, "--format", "json"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert run.returncode == 2 and run.stderr == "grader: cannot write to standard output: No space left on device\n"
