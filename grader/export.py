"""Exports of the results store: a CSV gradebook, JSON, the gradebook CSVs of Moodle and Canvas,
and the ``results.json`` of Gradescope's and PrairieLearn's autograders. Each format is one
function over the students' standings (``grader.standing``) under the rubric as stored, which
tells which tasks and checks exist; titles, messages and hints are in the language asked.

A student whose latest attempt could not grade the daemon is exported with the reason, never as
a zero: the score shown is the one their graded attempts earned, or none at all (an empty cell,
which LMS imports leave as it was)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import ODD_DATA, StoreError, UsageError
from .evaluate import localised
from .facts import engine_facts
from .i18n import translator
from .outcome import CheckResult, check_dict
from .provenance import identity, same_daemon, shared_by
from .rubric.model import CheckBase, Rubric, Task
from .standing import Mode, Standing, standing, standings
from .text import printable
from .util import first_problem

Row = TypeVar("Row")

# Cells starting with these are formulas to a spreadsheet (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The column each LMS matches its users by, and the roster column it is taken from, in order of
# preference: Moodle's grade import maps "Email address" to useremail or "ID number" to
# useridnumber; Canvas's gradebook import matches "SIS User ID" or "SIS Login ID".
MOODLE_IDS = (("email", "Email address"), ("sis_id", "ID number"))
CANVAS_IDS = (("sis_id", "SIS User ID"), ("email", "SIS Login ID"))
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


@dataclass(frozen=True)
class Gradebook:
    rubric: Rubric  # as stored last
    mode: Mode
    standings: list[Standing]  # every student in the store (or the one asked for), by name
    shared: dict[int, list[str]]  # attempt id -> other students with an attempt from its daemon
    lang: str = "en"
    engines: dict[int, dict[str, str | None]] = field(default_factory=dict)  # counted attempt id -> engine

    @property
    def max_score(self) -> float:
        return round(sum(c.points for _, c in self.rubric.checks()), 2)

    def checks_of(self, s: Standing) -> list[CheckResult]:
        """The standing's counted results in the gradebook's language."""
        return localised(s.checks, self.rubric, self.lang)


@dataclass(frozen=True)
class Asked:
    """What an export was asked for besides the gradebook."""

    fmt: str
    roster: Path | None = None
    per_check: bool = False


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its writer and what it needs. The table ``FORMATS`` is read by the
    ``--format`` choice, by ``export`` and by the generated docs."""

    name: str
    about: str  # one line for docs/cli.md
    write: Callable[[Gradebook, Asked], str]
    one_student: bool = False  # an autograder's results are per submission: --student
    identifiers: tuple[tuple[str, str], ...] = ()  # an LMS's (roster column, its column): --roster
    per_check: bool = False  # a CSV that --per-check widens


FORMATS: dict[str, ExportFormat] = {}


def export_format(name: str, about: str, **needs: Any) -> Callable[[Callable[[Gradebook, Asked], str]], Any]:
    """Register the decorated writer as export format ``name``."""

    def register(write: Callable[[Gradebook, Asked], str]) -> Callable[[Gradebook, Asked], str]:
        FORMATS[name] = ExportFormat(name, about, write, **needs)
        return write

    return register


def _either(names: list[str], word: str) -> str:
    return f"{', '.join(names[:-1])} {word} {names[-1]}" if len(names) > 1 else names[0]


def export(
    fmt: str,
    *,
    db_url: str | None = None,
    rubric_id: str | None = None,
    mode: Mode | None = None,
    student: str | None = None,
    roster: Path | None = None,
    per_check: bool = False,
    lang: str = "en",
) -> str:
    """The store's standings on one rubric as ``fmt`` text (ending with a newline). ``roster``
    gives Moodle's and Canvas's identifier column (its ``email`` or ``sis_id``); ``per_check``
    adds a column per check to a CSV."""
    if fmt not in FORMATS:
        raise UsageError(f"no export format {fmt!r}: {_either(list(FORMATS), 'or')}")
    form = FORMATS[fmt]
    if form.one_student and student is None:
        raise UsageError(f"--format {fmt} needs --student NAME ({fmt} results are per submission)")
    lms = [f.name for f in FORMATS.values() if f.identifiers]
    if form.identifiers and roster is None:
        raise UsageError(f"--format {fmt} needs --roster FILE: its email or sis_id column identifies each student")
    if roster is not None and not form.identifiers:
        raise UsageError(f"--roster is for --format {_either(lms, 'and')} (their identifier column)")
    if per_check and not form.per_check:
        wide = [f.name for f in FORMATS.values() if f.per_check]
        raise UsageError(f"--per-check adds columns to a CSV: --format {_either(wide, 'or')}")
    book = gradebook(db_url, rubric_id, mode, student, lang)
    return form.write(book, Asked(fmt, roster, per_check))


def gradebook(
    db_url: str | None,
    rubric_id: str | None = None,
    mode: Mode | None = None,
    student: str | None = None,
    lang: str = "en",
) -> Gradebook:
    from .store import Store

    store = Store(db_url, create=False, read_only=True)
    if rubric_id is None:
        stored = store.rubric_ids()
        if len(stored) != 1:
            found = ", ".join(stored) or "none"
            raise UsageError(f"pass --rubric ID: the store {store.url} holds rubrics: {found}")
        rubric_id = stored[0]
    rubric = store.rubric(rubric_id)
    mode = mode or rubric.mode
    names = store.students()
    if student is not None:
        if student not in names:
            raise UsageError(f"no student {student!r} in {store.url}")
        names = [student]
    found = {s.student: s for s in standings(store.attempts(rubric_id, student), mode)}
    shared = same_daemon(store.attempts(checks=False))  # every student's, of any rubric
    counted = [s.latest for s in found.values() if s.latest and s.latest.snapshot_digest]
    engines: dict[int, dict[str, str | None]] = {}
    for a in counted:
        try:
            engines[a.id] = engine_facts(store.snapshot(a.snapshot_digest or ""))
        except StoreError as exc:  # that attempt's snapshot only: its row says why
            engines[a.id] = {"error": str(exc)}
    books = [found.get(name) or standing(name, [], mode) for name in names]
    return Gradebook(rubric, mode, books, shared, lang, engines)


def status(s: Standing) -> str:
    """What the student's latest attempt was: graded, unreachable (with ``s.error``) or not attempted."""
    if not s.attempts:
        return "not attempted"
    return "unreachable" if s.error else "graded"


@export_format(
    "csv",
    "one row per student: points per task, total, max, status, graded_at, identity, same_daemon_as",
    per_check=True,
)
def as_csv(book: Gradebook, asked: Asked) -> str:
    """One row per student: points per task, total, max, status, when the latest attempt was made,
    how the counted attempts came in (``grader.provenance.identity``: "not verified" for a bundle
    imported without the course secret), the other students with an attempt from one of the
    student's daemons, and with ``per_check`` the points of each check (columns named by check
    id). Points are empty, not zero, for a student no attempt could grade."""
    per_check = asked.per_check
    titles = [task.title_in(book.lang) for task in book.rubric.tasks]
    header = ["student", *titles, "total", "max", "status", "graded_at", "identity", "same_daemon_as"]
    checks = _check_ids(book, per_check)

    def row(s: Standing) -> list[str]:
        earned = [sum(c.points for c in s.checks if c.task == n) for n in book.rubric.numbers]
        state = f"unreachable: {s.error}" if status(s) == "unreachable" else status(s)
        when = s.attempts[-1].graded_at.isoformat(timespec="seconds") if s.attempts else ""
        came, same = identity(s, book.mode) or "", ", ".join(shared_by(s.attempts, book.shared))
        cells = [s.student, *_scored(s, [*earned, s.score]), f"{book.max_score:g}", state, when, came, same]
        return cells + _check_points(book, s, per_check)

    def failed(s: Standing, why: str) -> list[str]:
        empty = [""] * (len(titles) + 1)
        return [s.student, *empty, f"{book.max_score:g}", f"error: {why}", "", "", "", *[""] * len(checks)]

    return _csv([header + checks, *_each(book.standings, row, failed)])


@export_format(
    "canvas",
    "the gradebook CSV Canvas imports, matched by the roster's sis_id or email",
    identifiers=CANVAS_IDS,
    per_check=True,
)
@export_format(
    "moodle",
    "the grade CSV Moodle imports, matched by the roster's email or sis_id",
    identifiers=MOODLE_IDS,
    per_check=True,
)
def as_lms_csv(book: Gradebook, asked: Asked) -> str:
    """The gradebook CSV that Moodle's or Canvas's grade import reads: the identifier column it
    matches users by (its ``identifiers``, from the roster), the student's name, and the rubric's
    total as one grade column named by the rubric's title (Canvas: its five leading columns,
    and a "Points Possible" row as its own export has). Every student of the store and of the
    roster is a row; a student of the store the roster gives no identifier is a usage error,
    as the LMS could not match them."""
    fmt, roster, per_check = asked.fmt, asked.roster, asked.per_check
    assert roster is not None  # export() asks for it
    from .roster import roster_rows

    listed = {row["student"]: row for row in roster_rows(roster)}
    given = {column for row in listed.values() for column, value in row.items() if value}
    found = [choice for choice in FORMATS[fmt].identifiers if choice[0] in given]
    if not found:
        wanted = " or ".join(column for column, _ in FORMATS[fmt].identifiers)
        raise UsageError(f"{roster}: no {wanted} column to identify students in {fmt}")
    column, heading = found[0]
    known = {s.student for s in book.standings}
    standings = book.standings + [standing(name, [], book.mode) for name in listed if name not in known]
    unlisted = [s.student for s in standings if not listed.get(s.student, {}).get(column)]
    if unlisted:
        raise UsageError(f"{roster}: no {column} for {', '.join(unlisted)} ({fmt} could not match them)")
    grade, checks = book.rubric.title_in(book.lang), _check_ids(book, per_check)
    if fmt == "moodle":

        def ids(s: Standing) -> list[str]:
            return [listed[s.student][column], s.student]

        header = [[heading, "Full name", grade, *checks]]
    else:

        def ids(s: Standing) -> list[str]:
            row = listed[s.student]
            return [s.student, "", row.get("sis_id", ""), row.get("email", ""), ""]

        maxima = [f"{c.points:g}" for _, c in book.rubric.checks()] if per_check else []
        header = [
            [*CANVAS_COLUMNS, grade, *checks],
            ["Points Possible", "", "", "", "", f"{book.max_score:g}", *maxima],
        ]

    def row(s: Standing) -> list[str]:
        return [*ids(s), *_scored(s, [s.score]), *_check_points(book, s, per_check)]

    def failed(s: Standing, _why: str) -> list[str]:  # no column for why: the grade is left as it was
        return [*ids(s), "", *[""] * len(checks)]

    return _csv(header + _each(standings, row, failed))


def _scored(s: Standing, points: list[float]) -> list[str]:
    """Points as cells: empty for a student no attempt could grade (never a zero)."""
    return [f"{p:g}" if s.latest is not None else "" for p in points]


def _check_ids(book: Gradebook, per_check: bool) -> list[str]:
    return [c.id for _, c in book.rubric.checks()] if per_check else []


def _check_points(book: Gradebook, s: Standing, per_check: bool) -> list[str]:
    got = {c.id: c.points for c in s.checks}
    return _scored(s, [got.get(i, 0.0) for i in _check_ids(book, per_check)])


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(_cells(row) for row in rows)
    return out.getvalue()


def _cells(values: list[str]) -> list[str]:
    """Cells a spreadsheet shows as text, as a terminal would (``text.printable``), never as a formula."""
    shown = [printable(v) for v in values]
    return ["'" + v if v.startswith(FORMULA_START) else v for v in shown]


def _each(
    standings: list[Standing], row: Callable[[Standing], Row], failed: Callable[[Standing, str], Row]
) -> list[Row]:
    """A ``row`` per standing; one that cannot be made from what the store holds is ``failed``,
    with why, and the others are made as usual."""
    rows = []
    for s in standings:
        try:
            rows.append(row(s))
        except ODD_DATA as exc:
            rows.append(failed(s, first_problem(exc)))
    return rows


@export_format("json", "every student's score, per-check results and engine")
def as_json(book: Gradebook, asked: Asked) -> str:
    """A list of the students' standings; ``checks`` as in ``grade --format json``."""
    return _dump(_each(book.standings, lambda s: _student(book, s), _failed_student))


def _failed_student(s: Standing, why: str) -> dict[str, Any]:
    return {"student": s.student, "status": "error", "error": why}


def _student(book: Gradebook, s: Standing) -> dict[str, Any]:
    counted = s.latest
    return {
        "student": s.student,
        "rubric": {"id": book.rubric.id, "version": counted.rubric_version if counted else book.rubric.version},
        "mode": book.mode,
        "status": status(s),
        "error": s.error,
        "score": s.score if counted else None,
        "max_score": book.max_score,
        "graded_at": s.attempts[-1].graded_at.isoformat(timespec="seconds") if s.attempts else None,
        "snapshot_digest": counted.snapshot_digest if counted else None,
        "engine": book.engines.get(counted.id) if counted else None,
        "identity": identity(s, book.mode),
        "same_daemon_as": shared_by(s.attempts, book.shared),
        "attempts": len(s.attempts),
        "checks": [check_dict(c) for c in book.checks_of(s)],
    }


@export_format("gradescope", "one student's Gradescope autograder results.json", one_student=True)
def as_gradescope(book: Gradebook, asked: Asked) -> str:
    """Gradescope's autograder ``results.json`` for one student: one test per rubric check.
    Without any graded attempt there is no score (Gradescope reports a failed autograder run,
    not a zero) and ``output`` says why."""
    s = book.standings[0]
    said = _said(book, s)
    if s.latest is None:
        return _dump({"output": said.why, "visibility": "visible", "tests": []})
    tests = [
        {
            "name": check.title_in(book.lang),
            "name_format": "text",
            "number": number,
            "score": c.points if c else 0.0,
            "max_score": check.points,
            "status": "passed" if c and c.passed else "failed",
            "output": output,
            "visibility": "visible",
        }
        for number, _task, check, c, output in said.tests
    ]
    return _dump(
        {
            "score": said.score,
            "max_score": book.max_score,
            "output": " ".join(filter(None, [said.summary, said.why])),
            "visibility": "visible",
            "tests": tests,
        }
    )


@export_format("prairielearn", "one student's PrairieLearn external grader results.json", one_student=True)
def as_prairielearn(book: Gradebook, asked: Asked) -> str:
    """PrairieLearn's external grader ``results.json`` for one student: ``score`` the share of
    the maximum (0 to 1), a test per rubric check (``points``, ``max_points``, ``message``, the
    hint as ``output``). A student whose daemon no attempt could grade is ``gradable: false`` with
    the reason (PrairieLearn then neither awards nor takes points, nor counts the attempt)."""
    s = book.standings[0]
    said = _said(book, s)
    if s.latest is None:
        return _dump({"gradable": False, "format_errors": [said.why], "message": said.why})
    tests = [
        {
            "name": check.title_in(book.lang),
            "description": task.title_in(book.lang),
            "points": c.points if c else 0.0,
            "max_points": check.points,
            "message": c.message if c else output,
            "output": c.hint if c else "",
        }
        for _number, task, check, c, output in said.tests
    ]
    return _dump(
        {
            "gradable": True,
            "score": round(said.score / book.max_score, 4) if book.max_score else 0.0,
            "message": " ".join(filter(None, [said.summary, said.why])),
            "tests": tests,
        }
    )


@dataclass(frozen=True)
class _Said:
    """What an autograder's results say of one student, in the gradebook's language."""

    score: float
    summary: str  # the rubric, the score, the mode, when
    why: str  # why the latest attempt could not grade the daemon ("" when it could)
    tests: list[tuple[str, Task, CheckBase, CheckResult | None, str]]  # number, task, check, result, output


def _said(book: Gradebook, s: Standing) -> _Said:
    if not s.attempts:
        raise UsageError(f"{s.student} has no attempt of {book.rubric.id}")
    _ = translator(book.lang)
    why = _("The latest attempt could not grade the daemon: {error}.").format(error=s.error) if s.error else ""
    results = {c.id: c for c in book.checks_of(s)}
    tests = []
    for n, task in zip(book.rubric.numbers, book.rubric.tasks, strict=True):
        for i, check in enumerate(task.checks, 1):
            c = results.get(check.id)
            hint = _("hint: {hint}").format(hint=c.hint) if c and c.hint else ""
            output = "\n".join(filter(None, [c.message, hint])) if c else _("not checked")
            tests.append((f"{n}.{i}", task, check, c, output))
    score = round(sum(c.points for c in results.values()), 2)
    summary = ""
    if s.latest is not None:
        summary = _("{rubric}: {score} ({mode} mode, graded {when}).").format(
            rubric=book.rubric.title_in(book.lang),
            score=f"{score:g}/{book.max_score:g}",
            mode=book.mode,
            when=s.latest.graded_at.isoformat(timespec="seconds"),
        )
    return _Said(score, summary, why, tests)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
