"""Renderings of a graded attempt: the students' checklist and the full tables for a terminal,
JSON and JUnit XML for machines. Terminal text is in the reader's language (``lang``); every
text from the rubric, the daemon or the command line is ``shown``: its head, control
characters escaped, never read as console markup."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from itertools import groupby
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

from . import i18n
from .evaluate import localised
from .facts import engine_facts
from .i18n import translator
from .outcome import CheckResult, check_dict, max_points_of, points_of
from .rubric.model import Rubric
from .text import printable, shown

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

    from .grading import Graded

STYLE = {"passed": "green", "failed": "red", "blocked": "yellow", "error": "magenta"}
MARK = {"passed": "✔", "failed": "✘", "blocked": "⊘", "error": "!"}
# A command in a hint, to offer as the next thing to type: up to a bracket, a semicolon or the
# end of the sentence. A template with ``...`` is not a command one can type.
COMMAND = re.compile(r"\bdocker [a-z][\w-]*(?: [^\s;()]+)*")


def in_lang(graded: Graded, lang: str) -> Graded:
    """``graded`` as a reader of ``lang`` sees it (``evaluate.localised``)."""
    if lang == "en":
        return graded
    checks = localised(graded.outcome.checks, graded.rubric, lang)
    return replace(graded, outcome=graded.outcome.model_copy(update={"checks": checks}))


def _statuses(_: Callable[[str], str]) -> dict[str, str]:
    return {"passed": _("passed"), "failed": _("failed"), "blocked": _("blocked"), "error": _("error")}


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
        "engine": engine_facts(graded.snapshot),
        "attempt_id": graded.attempt_id,
        "checks": [check_dict(c) for c in outcome.checks],
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
    """Every check in full, a table per task (``--verbose``, and ``grade``)."""
    from rich.table import Table  # here, as in each terminal rendering: JSON and JUnit never load rich
    from rich.text import Text

    _ = translator(lang)
    statuses = _statuses(_)
    graded = in_lang(graded, lang)
    console.print(Text.assemble(shown(graded.rubric.title_in(lang), "bold"), " · ", shown(graded.student)))
    for number, checks in _by_task(graded.outcome.checks):
        title = _("Task {title} — {points}").format(
            title=_task_title(graded.rubric, number, lang), points=_points(checks)
        )
        table = Table(title=shown(title, "table.title"), title_justify="left", show_header=True, expand=False)
        table.add_column(_("Check"))
        table.add_column(_("Status"))
        table.add_column(_("Points"), justify="right")
        table.add_column(_("Detail"), overflow="fold", max_width=70)
        for c in checks:
            detail = shown(c.message)
            if c.hint:
                detail.append_text(shown("\n" + _("hint: {hint}").format(hint=c.hint), "cyan"))
            status = Text(f"{MARK[c.status]} {statuses[c.status]}", STYLE[c.status])
            table.add_row(shown(c.title), status, f"{c.points:g}/{c.max_points:g}", detail)
        console.print(table)
    console.print(_score_line(graded, _))


def checklist(graded: Graded, lang: str = "en", provisional: bool = False) -> RenderableType:
    """The self-check as a student reads it (``check``'s default): a line per task with its mark
    and points; the first task that does not pass unfolded, a line per check with each failing
    check's message and hint; then the score and the next command to type. It fits a terminal
    (25 lines) in every state of a lab. A renderable, so that a live view can draw it again as
    the daemon changes."""
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    _ = translator(lang)
    statuses = _statuses(_)
    graded = in_lang(graded, lang)
    lines = Table.grid(padding=(0, 1))
    lines.add_column(no_wrap=True)  # a task's mark
    lines.add_column(overflow="fold")  # the task, or a check (its mark first), its message, its hint
    lines.add_column(justify="right", no_wrap=True)  # points
    tasks = _by_task(graded.outcome.checks)
    first = next((n for n, checks in tasks if not all(c.passed for c in checks)), None)
    for number, checks in tasks:
        title = shown(_task_title(graded.rubric, number, lang), "bold")
        if all(c.passed for c in checks):
            lines.add_row(Text(MARK["passed"], STYLE["passed"]), title, _points(checks))
            continue
        mark = "failed" if any(c.status in ("failed", "error") for c in checks) else "blocked"
        lines.add_row(Text(MARK[mark], STYLE[mark]), title, _points(checks))
        if number != first:  # one step at a time: a later one is its line and its score
            continue
        for c in checks:
            what = Text.assemble((f"{MARK[c.status]} ", STYLE[c.status]), shown(c.title))
            if c.status == "blocked":
                what.append(f" ({statuses['blocked']})", "dim")
            lines.add_row("", what, f"{c.points:g}/{c.max_points:g}")
            if c.status in ("failed", "error"):
                lines.add_row("", Padding(shown(c.message, "dim"), (0, 0, 0, 2)), "")
                if c.hint:
                    lines.add_row("", Padding(shown(_("hint: {hint}").format(hint=c.hint), "cyan"), (0, 0, 0, 2)), "")
    head = Text.assemble(shown(graded.rubric.title_in(lang), "bold"), " · ", shown(graded.student))
    return Group(head, lines, _score_line(graded, _, first, provisional))


def watch_view(graded: Graded, lang: str, note: str, pending: int) -> RenderableType:
    """The live checklist of ``check --watch``: the checklist, then what the watcher saw last
    and whether probes are still running for it."""
    from rich.console import Group

    _ = translator(lang)
    status = _("watching the daemon; Ctrl-C ends it")
    if note:
        status = _("last seen: {event}").format(event=note)
    if pending:
        status += " · " + _("probing again ({count})…").format(count=pending)
    return Group(checklist(graded, lang, provisional=pending > 0), shown(status, "dim"))


def _score_line(graded: Graded, _: Callable[[str], str], first: int | None = None, provisional: bool = False) -> Text:
    """The total, then what to do: well done (never while probes are still running for a live
    view: their checks show earlier results), or (for the checklist) the next command to type."""
    from rich.text import Text

    outcome = graded.outcome
    line = Text()
    total = _("Total: {score}").format(score=f"{outcome.score:g}/{outcome.max_score:g}")
    line.append(total, "bold " + ("green" if outcome.passed else "red"))
    if outcome.passed and not provisional:
        line.append(" · " + _("Everything passes. Well done!"), "green")
    elif first is not None:
        line.append(" · " + _("next:") + " ")
        line.append_text(shown(next_command(graded, first), "bold cyan"))
    return line


def next_command(graded: Graded, task: int) -> str:
    """The first command that a failing check of ``task`` suggests (its computed hint's, then its
    rubric hint's, each read alone: joined, a command would run on into the next sentence),
    else checking that task again."""
    hints = {check.id: check.hint.en for _, check in graded.rubric.checks()}
    for c in graded.outcome.checks:
        if c.task != task or c.status not in ("failed", "error"):
            continue
        for hint in (i18n.Text.load(c.phrases.get("hint", "")), hints.get(c.id, c.hint)):
            for found in COMMAND.finditer(hint):
                if "..." not in found.group():
                    return found.group().rstrip(".,")
    return f"grader check --task {task}"


def _by_task(checks: list[CheckResult]) -> list[tuple[int, list[CheckResult]]]:
    return [(number, list(group)) for number, group in groupby(checks, key=lambda c: c.task)]


def _points(checks: list[CheckResult]) -> str:
    return f"{points_of(checks):g}/{max_points_of(checks):g}"


def _task_title(rubric: Rubric, number: int, lang: str) -> str:
    task = rubric.task(number)
    return task.title_in(lang) if task else str(number)
