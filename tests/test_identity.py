"""Who handed a bundle in: ``grader keys`` gives each student of a roster a key under the
course secret, ``grader check --submit --key`` seals a bundle with it, ``grader import --secret``
refuses a bundle not sealed with its student's key. Without the secret, attempts are marked
"identity not verified" in the report and the exports. Two students' attempts from one daemon
(an engine or container ID in common) are flagged. Bundles made from the snapshots recorded on
the bench (tests/golden); no daemon needed."""

from __future__ import annotations

import csv
import io
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_bundle import forge, run_import, submit

from grader.cli import main
from grader.errors import UsageError
from grader.export import export
from grader.importing import import_bundles
from grader.keys import secret, student_key
from grader.snapshot import Snapshot
from grader.store import Store

GOLDEN = Path(__file__).parent / "golden"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The course secret and the keys of ani and budi, as ``grader keys`` prints them."""
    roster = tmp_path / "class.csv"
    roster.write_text("student,docker_host\nani,ssh://ani@pc-01\nbudi,ssh://budi@pc-02\n")
    result = run("keys", str(roster), "--secret", str(tmp_path / "course.key"))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["student", "key"]
    return tmp_path / "course.key", dict(rows[1:])


def test_keys_for_a_roster(tmp_path: Path) -> None:
    """A roster as a spreadsheet saves it (BOM, semicolons, CRLF): only the student column is
    read (budi has no daemon yet); one of only that column is enough."""
    roster = tmp_path / "class.csv"
    roster.write_bytes(b"\xef\xbb\xbfstudent;docker_host\r\nAni Lestari;ssh://ani@pc-01\r\nbudi;\r\n")
    key_file = tmp_path / "secrets" / "course.key"
    key_file.parent.mkdir()

    first = run("keys", str(roster), "--secret", str(key_file))

    assert first.exit_code == 0, first.output
    assert first.stderr == f"grader: made a new course secret in {key_file}\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    rows = list(csv.reader(io.StringIO(first.stdout)))
    course_secret = key_file.read_bytes()
    assert rows == [["student", "key"], *([n, student_key(course_secret, n)] for n in ("Ani Lestari", "budi"))]
    assert all(len(k) == 12 and k.isalnum() and k.isupper() for _, k in rows[1:])
    roster.write_text("student\nAni Lestari\nbudi\n")
    again = run("keys", str(roster), "--secret", str(key_file))
    assert (again.stdout, again.stderr) == (first.stdout, "")  # the same secret, the same keys


def test_keys_refuse_a_bad_roster_or_secret_without_making_one(tmp_path: Path) -> None:
    roster = tmp_path / "class.csv"
    roster.write_text("name\nani\n")
    result = run("keys", str(roster), "--secret", str(tmp_path / "course.key"))
    assert result.exit_code == 2 and "missing column(s) student" in result.stderr
    assert not (tmp_path / "course.key").exists()
    roster.write_text("student\nani\n")
    result = run("keys", str(roster), "--secret", str(roster))  # the roster given as the secret
    assert result.exit_code == 2 and result.stderr == f"grader: {roster} is not a course secret (32 bytes; it has 12)\n"


def test_a_sealed_bundle_is_verified(tmp_path: Path, course: tuple[Path, dict[str, str]]) -> None:
    key_file, keys = course
    db = f"sqlite:///{tmp_path / 'class.db'}"
    path = submit(tmp_path, "networks-reference", key=keys["ani"])
    result = run_import(str(path), "--secret", str(key_file), "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"{path}: ani 25.5/25.5"
    [attempt] = Store(db).attempts()
    assert (attempt.student, attempt.identity) == ("ani", "verified")
    [row] = json.loads(export("json", db_url=db))
    assert row["identity"] == "verified"


def test_a_wrong_key_is_refused(tmp_path: Path, course: tuple[Path, dict[str, str]]) -> None:
    """ani seals her bundle with budi's key (she borrowed it, or guessed)."""
    key_file, keys = course
    db = f"sqlite:///{tmp_path / 'class.db'}"
    path = submit(tmp_path, "networks-reference", key=keys["budi"])
    result = run_import(str(path), "--secret", str(key_file), "--db", db)
    assert result.exit_code == 1
    assert result.stderr == f"grader: {path}: not sealed with ani's key (another student's key, or an edited name)\n"
    assert result.stdout == "imported 0, skipped 0, failed 1\n"
    assert Store(db).attempts() == []


def test_a_forged_name_is_refused(tmp_path: Path, course: tuple[Path, dict[str, str]]) -> None:
    """ani's sealed bundle, renamed to budi with both digests resealed (anyone can): the seal was
    made with ani's key, of ani's digest."""
    key_file, keys = course
    db = f"sqlite:///{tmp_path / 'class.db'}"
    path = forge(submit(tmp_path, "networks-reference", key=keys["ani"]), lambda b: b.update(student="budi"))
    result = run_import(str(path), "--secret", str(key_file), "--db", db)
    assert result.exit_code == 1
    assert result.stderr == f"grader: {path}: not sealed with budi's key (another student's key, or an edited name)\n"
    assert Store(db).attempts() == []


def test_an_unsealed_bundle_is_refused_with_the_secret(tmp_path: Path, course: tuple[Path, dict[str, str]]) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    path = submit(tmp_path, "networks-reference")
    result = run_import(str(path), "--secret", str(course[0]), "--db", db)
    assert result.exit_code == 1
    assert result.stderr == f"grader: {path}: not sealed with a student key (made without --key): cannot be verified\n"
    assert Store(db).attempts() == []


def test_unverified_marks(tmp_path: Path, course: tuple[Path, dict[str, str]]) -> None:
    """Sealed or not, a bundle imported without --secret is stored, marked in the import's
    summary, the CSV and JSON exports and every page of the report."""
    db = f"sqlite:///{tmp_path / 'class.db'}"
    sealed = submit(tmp_path, "networks-reference", key=course[1]["ani"])
    result = run_import(str(sealed), "--db", db)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"{sealed}: ani 25.5/25.5 (identity not verified)"
    assert [a.identity for a in Store(db).attempts()] == ["unverified"]

    header, row = list(csv.reader(io.StringIO(export("csv", db_url=db))))
    assert dict(zip(header, row, strict=True))["identity"] == "not verified"
    [student] = json.loads(export("json", db_url=db))
    assert student["identity"] == "not verified"

    site = tmp_path / "site"
    assert run("report", "--db", db, "--out", str(site)).exit_code == 0
    [student_page], [attempt_page] = site.glob("students/*.html"), site.glob("attempts/*.html")
    mark = '<span class="mark">identity not verified</span>'
    assert mark in (site / "index.html").read_text() and mark in student_page.read_text()
    assert '<td class="mark">not verified</td>' in student_page.read_text()
    assert '<dd class="mark">not verified: a bundle imported without the course secret' in attempt_page.read_text()


def test_student_overrides_the_name_of_one_bundle(tmp_path: Path, course: tuple[Path, dict[str, str]]) -> None:
    """A bundle made under a login name (``ubuntu``) is stored under the roster's name; with
    --secret, the key must be that student's."""
    key_file, keys = course
    db = f"sqlite:///{tmp_path / 'class.db'}"
    path = submit(tmp_path, "networks-reference", student="ubuntu", key=keys["budi"])
    assert run_import(str(path), "--student", "ani", "--secret", str(key_file), "--db", db).exit_code == 1
    result = run_import(str(path), "--student", "budi", "--secret", str(key_file), "--db", db)
    assert result.exit_code == 0, result.output
    assert [(a.student, a.identity) for a in Store(db).attempts()] == [("budi", "verified")]
    two = run_import(str(path), str(path), "--student", "budi", "--db", db)
    assert two.exit_code == 2 and "--student names the student of one bundle" in two.stderr


def test_check_refuses_a_bad_key_before_grading(tmp_path: Path) -> None:
    """Usage errors, before any daemon is looked for (there is none here)."""
    bundle = str(tmp_path / "lab2.json")
    no_name = run("check", "--submit", bundle, "--key", "K7QJ2MXRAB4D", "--docker-host", "unix:///nonexistent")
    assert no_name.exit_code == 2 and "--key needs --student" in no_name.stderr
    typo = run("check", "--submit", bundle, "--student", "ani", "--key", "K7QJ-2MXR-AB4", "--docker-host", "unix:///x")
    assert typo.exit_code == 2 and "--key must be the 12 letters and digits" in typo.stderr


def test_the_secret_file_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "course.key"
    made, created = secret(path, create=True)
    assert created and len(made) == 32
    assert secret(path, create=True) == (made, False) == secret(path)
    with pytest.raises(UsageError, match="grader keys ROSTER --secret FILE makes one"):
        secret(tmp_path / "missing.key")
    with pytest.raises(UsageError, match="cannot read the course secret"):
        import_bundles([], db_url=f"sqlite:///{tmp_path / 'class.db'}", secret=tmp_path / "missing.key")


def _engine(engine_id: str):
    def change(body: dict) -> None:
        body["snapshot"]["engine"]["ID"] = engine_id

    return change


def test_attempts_from_one_daemon_are_flagged(tmp_path: Path) -> None:
    """ani and budi hand in the same recorded daemon (a copy: its containers' IDs); citra and
    dewi different containers of one engine (one machine, two students); eko his own daemon, of
    lab 1. Flagged in the import summary, the exports and the report; eko nowhere. (Every
    engine ID is set here: the recorded daemons are all the bench's.)"""
    db = f"sqlite:///{tmp_path / 'class.db'}"
    one_engine = _engine("5d7e-one-engine")
    files = [
        forge(submit(tmp_path, "networks-reference", student="ani", name="ani.json"), _engine("0a1b-copied")),
        forge(submit(tmp_path, "networks-reference", student="budi", name="budi.json"), _engine("0a1b-copied")),
        forge(submit(tmp_path, "networks-typo", student="citra", name="citra.json"), one_engine),
        forge(submit(tmp_path, "networks-forgot-connect", student="dewi", name="dewi.json"), one_engine),
        forge(submit(tmp_path, "links-reference", student="eko", name="eko.json"), _engine("9c1f-another")),
    ]

    result = run_import(*map(str, files), "--db", db)

    assert result.exit_code == 0, result.output
    said = dict(line.split(": ", 1) for line in result.stdout.splitlines()[:-1])
    assert said[str(files[0])] == "ani 25.5/25.5 (identity not verified; same daemon as budi)"
    assert said[str(files[1])] == "budi 25.5/25.5 (identity not verified; same daemon as ani)"
    assert said[str(files[2])].endswith("(identity not verified; same daemon as dewi)")
    assert said[str(files[3])].endswith("(identity not verified; same daemon as citra)")
    assert said[str(files[4])].endswith("(identity not verified)")

    rows = list(csv.DictReader(io.StringIO(export("csv", db_url=db, rubric_id="docker-networks"))))
    assert {r["student"]: r["same_daemon_as"] for r in rows} == {
        "ani": "budi",
        "budi": "ani",
        "citra": "dewi",
        "dewi": "citra",
        "eko": "",  # in the store, not in lab 2
    }
    lab1 = {s["student"]: s for s in json.loads(export("json", db_url=db, rubric_id="docker-links"))}
    assert lab1["eko"]["same_daemon_as"] == []
    students = {s["student"]: s for s in json.loads(export("json", db_url=db, rubric_id="docker-networks"))}
    assert students["citra"]["same_daemon_as"] == ["dewi"]

    site = tmp_path / "site"
    assert run("report", "--db", db, "--out", str(site)).exit_code == 0
    index = (site / "index.html").read_text()
    assert '<span class="mark">same daemon as budi</span>' in index and "same daemon as eko" not in index
    flagged = [p for p in site.glob("attempts/*.html") if "<dt>Same daemon as</dt>" in p.read_text()]
    assert len(flagged) == 4  # all but eko's


def test_migration_0005_marks_old_imports_and_reads_their_daemons(tmp_path: Path) -> None:
    """A store of schema 0004 with an imported and a graded attempt: after the upgrade the
    import is "unverified", the grade has no identity, and both know their containers."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from grader.store import MIGRATIONS

    db = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(db)
    reference = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(text("INSERT INTO students (id, name) VALUES (1, 'ani'), (2, 'budi')"))
        connection.execute(text("INSERT INTO rubrics VALUES (1, 'docker-networks', '1', 'd', '{}')"))
        snapshot = {"d": reference.digest, "b": reference.to_json()}
        connection.execute(text("INSERT INTO snapshots VALUES (:d, :b)"), snapshot)
        attempt = (
            "INSERT INTO attempts (student_id, rubric_row_id, snapshot_digest, source, graded_at, grader_version,"
            " score, max_score) VALUES (:s, 1, :d, :source, '2026-11-02 09:00:00', '0.1.0', 1, 1)"
        )
        for student, source in ((1, "import"), (2, "batch")):
            connection.execute(text(attempt), {"s": student, "d": reference.digest, "source": source})
    engine.dispose()

    ani, budi = Store(db).attempts(checks=False)

    probe = [c["Id"] for c in reference.containers if (c["Config"]["Labels"] or {}).get("grader.probe") == "1"]
    containers = tuple(c["Id"] for c in reference.containers if c["Id"] not in probe)
    assert (ani.identity, budi.identity) == ("unverified", None)
    assert ani.container_ids == budi.container_ids == containers and len(containers) > 2
    assert ani.engine_id == reference.engine.get("ID")  # None in snapshots recorded before it was kept
