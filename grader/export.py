"""Exports of the results store: a CSV gradebook for LMS import, JSON, and Gradescope's
``results.json``. Each format is one function over the students' standings (``grader.standing``)
under the rubric as stored, which tells which tasks and checks exist.

A student whose latest attempt could not grade the daemon is exported with the reason, never as
a zero: the score shown is the one their graded attempts earned, or none at all."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .outcome import CheckResult
from .provenance import identity, same_daemon, shared_by
from .render import check_dict
from .rubric.model import CheckBase, Rubric
from .standing import Mode, Standing, standing, standings

# Cells starting with these are formulas to a spreadsheet (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Gradebook:
    rubric: Rubric  # as stored last
    mode: Mode
    standings: list[Standing]  # every student in the store (or the one asked for), by name
    shared: dict[int, list[str]]  # attempt id -> other students with an attempt from its daemon

    @property
    def max_score(self) -> float:
        return round(sum(c.points for _, c in self.rubric.checks()), 2)


def export(
    fmt: str,
    *,
    db_url: str | None = None,
    rubric_id: str | None = None,
    mode: Mode | None = None,
    student: str | None = None,
) -> str:
    """The store's standings on one rubric as ``fmt`` text (ending with a newline)."""
    if fmt == "gradescope" and student is None:
        raise UsageError("--format gradescope needs --student NAME (Gradescope results are per submission)")
    book = gradebook(db_url, rubric_id, mode, student)
    if fmt == "csv":
        return as_csv(book)
    if fmt == "json":
        return as_json(book)
    return as_gradescope(book, book.standings[0])


def gradebook(
    db_url: str | None, rubric_id: str | None = None, mode: Mode | None = None, student: str | None = None
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
    return Gradebook(rubric, mode, [found.get(name) or standing(name, [], mode) for name in names], shared)


def status(s: Standing) -> str:
    """What the student's latest attempt was: graded, unreachable (with ``s.error``) or not attempted."""
    if not s.attempts:
        return "not attempted"
    return "unreachable" if s.error else "graded"


def as_csv(book: Gradebook) -> str:
    """One row per student: points per task, total, max, status, when the latest attempt was made,
    how the counted attempts came in (``grader.provenance.identity``: "not verified" for a bundle
    imported without the course secret) and the other students with an attempt from one of the
    student's daemons. Points are empty, not zero, for a student no attempt could grade."""
    titles = [task.title for task in book.rubric.tasks]
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["student", *titles, "total", "max", "status", "graded_at", "identity", "same_daemon_as"]
    writer.writerow(_cells(header))
    for s in book.standings:
        scored = s.latest is not None
        earned = [sum(c.points for c in s.checks if c.task == n) for n in book.rubric.numbers]
        points = [f"{p:g}" if scored else "" for p in earned]
        state = f"unreachable: {s.error}" if status(s) == "unreachable" else status(s)
        when = s.attempts[-1].graded_at.isoformat(timespec="seconds") if s.attempts else ""
        total = f"{s.score:g}" if scored else ""
        came, same = identity(s, book.mode) or "", ", ".join(shared_by(s.attempts, book.shared))
        writer.writerow(_cells([s.student, *points, total, f"{book.max_score:g}", state, when, came, same]))
    return out.getvalue()


def _cells(values: list[str]) -> list[str]:
    return ["'" + v if v.startswith(FORMULA_START) else v for v in values]


def as_json(book: Gradebook) -> str:
    """A list of the students' standings; ``checks`` as in ``grade --format json``."""
    return _dump([_student(book, s) for s in book.standings])


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
        "identity": identity(s, book.mode),
        "same_daemon_as": shared_by(s.attempts, book.shared),
        "attempts": len(s.attempts),
        "checks": [check_dict(c) for c in s.checks],
    }


def as_gradescope(book: Gradebook, s: Standing) -> str:
    """Gradescope's autograder ``results.json`` for one student: one test per rubric check.
    Without any graded attempt there is no score (Gradescope reports a failed autograder run,
    not a zero) and ``output`` says why."""
    if not s.attempts:
        raise UsageError(f"{s.student} has no attempt of {book.rubric.id}")
    why = f"The latest attempt could not grade the daemon: {s.error}." if s.error else ""
    if s.latest is None:
        return _dump({"output": why, "visibility": "visible", "tests": []})
    results = {c.id: c for c in s.checks}
    tests = [
        _test(f"{n}.{i}", check, results.get(check.id))
        for n, task in zip(book.rubric.numbers, book.rubric.tasks, strict=True)
        for i, check in enumerate(task.checks, 1)
    ]
    score = round(sum(t["score"] for t in tests), 2)
    graded_at = s.latest.graded_at.isoformat(timespec="seconds")
    summary = f"{book.rubric.title}: {score:g}/{book.max_score:g} ({book.mode} mode, graded {graded_at})."
    return _dump(
        {
            "score": score,
            "max_score": book.max_score,
            "output": " ".join(filter(None, [summary, why])),
            "visibility": "visible",
            "tests": tests,
        }
    )


def _test(number: str, check: CheckBase, c: CheckResult | None) -> dict[str, Any]:
    output = "\n".join(filter(None, [c.message, c.hint and f"hint: {c.hint}"])) if c else "not checked"
    return {
        "name": check.title,
        "name_format": "text",
        "number": number,
        "score": c.points if c else 0.0,
        "max_score": check.points,
        "status": "passed" if c and c.passed else "failed",
        "output": output,
        "visibility": "visible",
    }


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
