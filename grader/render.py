"""Terminal and machine-readable renderings of a graded attempt: table, JSON, JUnit XML."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .grading import Graded
from .outcome import CheckResult
from .rubric.model import Rubric
from .text import printable, shown

LABELS = {
    "en": {
        "check": "Check",
        "status": "Status",
        "points": "Points",
        "detail": "Detail",
        "hint": "hint",
        "total": "Total",
        "task": "Task",
        "passed": "passed",
        "failed": "failed",
        "blocked": "blocked",
        "error": "error",
        "done": "Everything passes. Well done!",
    },
    "id": {
        "check": "Pemeriksaan",
        "status": "Status",
        "points": "Poin",
        "detail": "Keterangan",
        "hint": "saran",
        "total": "Total",
        "task": "Langkah",
        "passed": "lulus",
        "failed": "gagal",
        "blocked": "terblokir",
        "error": "galat",
        "done": "Semua lulus. Kerja bagus!",
    },
}
STYLE = {"passed": "green", "failed": "red", "blocked": "yellow", "error": "magenta"}
MARK = {"passed": "✔", "failed": "✘", "blocked": "⊘", "error": "!"}


def as_dict(graded: Graded) -> dict[str, Any]:
    """The JSON contract of ``grade --format json`` (docs/design.md)."""
    outcome = graded.outcome
    return {
        "student": graded.student,
        "rubric": {"id": graded.rubric.id, "version": graded.rubric.version},
        "score": outcome.score,
        "max_score": outcome.max_score,
        "graded_at": graded.graded_at,
        "snapshot_digest": graded.snapshot.digest,
        "attempt_id": graded.attempt_id,
        "checks": [check_dict(c) for c in outcome.checks],
    }


def check_dict(c: CheckResult) -> dict[str, Any]:
    """One check's result in the JSON contract (docs/design.md) (``grade --format json`` and exports)."""
    return {
        "id": c.id,
        "title": c.title,
        "task": c.task,
        "status": c.status,
        "passed": c.passed,
        "points": c.points,
        "max_points": c.max_points,
        "expected": c.expected,
        "actual": c.actual,
        "message": c.message,
        "hint": c.hint,
    }


def as_json(graded: Graded) -> str:
    return json.dumps(as_dict(graded), indent=2, ensure_ascii=False)


def as_junit(graded: Graded) -> str:
    """JUnit XML; every text goes through ``printable``, as XML 1.0 cannot carry most control
    characters (a name with ESC or NUL made a file no parser reads)."""
    outcome = graded.outcome
    failures = sum(c.status == "failed" for c in outcome.checks)
    errors = sum(c.status == "error" for c in outcome.checks)
    skipped = sum(c.status == "blocked" for c in outcome.checks)
    suite = ET.Element(
        "testsuite",
        name=printable(f"{graded.rubric.id}:{graded.student}"),
        tests=str(len(outcome.checks)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        timestamp=graded.graded_at,
    )
    for c in outcome.checks:
        case = ET.SubElement(suite, "testcase", classname=printable(f"{graded.rubric.id}.task{c.task}"), name=c.id)
        message = printable(c.message)
        text = printable(f"{c.title}\n{c.message}" + (f"\nhint: {c.hint}" if c.hint else ""))
        if c.status == "failed":
            ET.SubElement(case, "failure", message=message).text = text
        elif c.status == "error":
            ET.SubElement(case, "error", message=message).text = text
        elif c.status == "blocked":
            ET.SubElement(case, "skipped", message=message)
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def print_table(graded: Graded, console: Console, lang: str = "en") -> None:
    """The result as tables, a task each. Every text from the rubric, the daemon or the command
    line is ``shown``: its head, control characters escaped, never read as console markup."""
    words = LABELS[lang]
    outcome = graded.outcome
    by_task: dict[int, list[Any]] = {}
    for c in outcome.checks:
        by_task.setdefault(c.task, []).append(c)
    console.print(Text.assemble(shown(graded.rubric.title, "bold"), " · ", shown(graded.student)))
    for number, checks in by_task.items():
        got = sum(c.points for c in checks)
        top = sum(c.max_points for c in checks)
        table = Table(
            title=shown(f"{words['task']} {_task_title(graded.rubric, number)} — {got:g}/{top:g}", "table.title"),
            title_justify="left",
            show_header=True,
            expand=False,
        )
        table.add_column(words["check"])
        table.add_column(words["status"])
        table.add_column(words["points"], justify="right")
        table.add_column(words["detail"], overflow="fold", max_width=70)
        for c in checks:
            detail = shown(c.message)
            if c.hint:
                detail.append_text(shown(f"\n{words['hint']}: {c.hint}", "cyan"))
            status = f"[{STYLE[c.status]}]{MARK[c.status]} {words[c.status]}[/]"
            table.add_row(shown(c.title), status, f"{c.points:g}/{c.max_points:g}", detail)
        console.print(table)
    colour = "green" if outcome.passed else "red"
    console.print(f"[bold {colour}]{words['total']}: {outcome.score:g}/{outcome.max_score:g}[/]")
    if outcome.passed:
        console.print(f"[green]{words['done']}[/]")


def _task_title(rubric: Rubric, number: int) -> str:
    task = rubric.task(number)
    return task.title if task else str(number)
