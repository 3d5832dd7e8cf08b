"""The live class board: where every roster student is now, kept in memory and changed one
attempt at a time (no transport here: the web app renders it, the fan-out feeds it).

A class that runs several labs has one board per rubric. A row is the student's latest
attempt of the rubric, counted in the rubric's mode as ``grader report`` counts it
(``standing``): in progress mode a checkpoint proved in an earlier attempt keeps its credit.
It shows the step they are on (the first task not passed in full), the score, one cell per
check, when it last changed and when the score last rose ("stuck" after ``stuck_after``
without a rise, until full marks), and the other students an attempt of theirs shares a daemon
with (``provenance``). What it keeps per student is bounded (the latest attempt, the attempts
that first proved each checkpoint, at most MAX_IDENTS of its daemons' IDs): memory stays flat
however long the class, and whatever the bundles hold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..i18n import translator
from ..outcome import max_points_of, points_of
from ..provenance import daemon_idents
from ..report import attempt_file, student_file
from ..report.charts import STATUS_CSS
from ..standing import PARTIAL, with_progress

if TYPE_CHECKING:
    from ..outcome import CheckResult
    from ..rubric.model import Rubric
    from ..store import Attempt


# A student's daemon IDs the board keeps, to tell "same daemon as": a lab makes some tens of
# containers, and a bundle may name thousands (IDs of its own making, each time). Past that,
# the student's new IDs are not compared on the board (the report compares all).
MAX_IDENTS = 1000


@dataclass
class Place:
    """One student's place on the board."""

    student: str
    latest: Attempt | None = None
    changed_at: datetime | None = None  # of the latest attempt
    rose_at: datetime | None = None  # when the score last rose (or was first seen)
    best: float = -1.0
    idents: set[str] = field(default_factory=set)  # of every attempt's daemon
    provers: list[Attempt] = field(default_factory=list)  # the first to prove each checkpoint (progress mode)
    proved: set[str] = field(default_factory=set)  # their checkpoints
    counted: list[CheckResult] = field(default_factory=list)  # the latest attempt's, as the mode counts them


@dataclass(frozen=True)
class Cell:
    css: str  # STATUS_CSS, "" without a result
    title: str  # the check's title and status, for a tooltip


@dataclass(frozen=True)
class RowView:
    key: str  # the row's HTML id: stable, never the student's text
    student: str
    href: str  # the latest attempt's page, "" without one
    step: str
    score: str
    cells: list[Cell]
    changed: str  # the time of the last change, "" without one
    state: str  # "not connected yet", "stuck", "done", ""
    shared: list[str]  # same daemon as


@dataclass(frozen=True)
class Rate:
    check: str
    title: str
    percent: int


class Board:
    def __init__(self, rubric: Rubric, students: list[str], stuck_after: timedelta, number: int = 0):
        self.rubric, self.stuck_after = rubric, stuck_after
        self.places = {name: Place(name) for name in students}
        self.keys = {name: f"r{number}s{i}" for i, name in enumerate(students)}  # the rows' HTML ids
        self.rates_key = f"r{number}rates"
        self.files = {student_file(name): name for name in students}  # the report's student pages
        self.owners: dict[str, set[str]] = {}  # daemon ident -> students
        # The pass rates' counts, kept as rows change (a push reads them, 300 rows of 20 checks
        # counted again took 6 ms): students with a row, and how many of them pass each check.
        self.connected = 0
        self.passing: Counter[str] = Counter()

    def add(self, attempt: Attempt) -> set[str]:
        """Take one stored attempt; returns the students whose rows changed (the attempt's, and
        those it newly shares a daemon with). Attempts of other rubrics, of students off the
        roster, errors, and ones older than the row's are left out (and, as in ``standing``, a
        check of one task never stands for the whole lab, though in progress mode a checkpoint
        it proved keeps its credit)."""
        place = self.places.get(attempt.student)
        if place is None or attempt.rubric_id != self.rubric.id or not attempt.ok:
            return set()
        recounted = self.rubric.mode == "progress" and self._proves(place, attempt) and place.latest is not None
        if recounted:
            self._count(place)
        if attempt.source.endswith(PARTIAL):
            return {attempt.student} if recounted else set()
        changed = {attempt.student}
        new = [ident for ident in daemon_idents(attempt) if ident not in place.idents]
        for ident in new[: MAX_IDENTS - len(place.idents)]:
            owners = self.owners.setdefault(ident, set())
            changed |= owners
            owners.add(attempt.student)
            place.idents.add(ident)
        latest = place.latest
        if latest is not None and (latest.graded_at, latest.id) > (attempt.graded_at, attempt.id):
            return changed - {attempt.student}
        self.connected += latest is None
        place.latest, place.changed_at = attempt, attempt.graded_at
        self._count(place)
        return changed

    def _proves(self, place: Place, attempt: Attempt) -> bool:
        """Whether ``attempt`` is the first to prove a checkpoint of the student's."""
        new = {c.id for c in attempt.checks if c.when == "checkpoint" and c.passed} - place.proved
        if new:
            place.provers.append(attempt)
            place.proved |= new
        return bool(new)

    def _count(self, place: Place) -> None:
        """The latest attempt's checks as the rubric's mode counts them; when the score rose."""
        latest = place.latest
        if latest is None:
            return
        checks = list(latest.checks)
        self.passing.subtract(c.id for c in place.counted if c.passed)
        place.counted = with_progress(checks, place.provers) if self.rubric.mode == "progress" else checks
        self.passing.update(c.id for c in place.counted if c.passed)
        score = points_of(place.counted)
        if score > place.best:
            place.best, place.rose_at = score, latest.graded_at

    def sharing(self, attempt: Attempt) -> list[str]:
        """The other students with an attempt from the daemon of ``attempt``."""
        owners = (self.owners.get(ident, set()) for ident in daemon_idents(attempt))
        return sorted(set().union(*owners) - {attempt.student})

    def stuck(self, place: Place, now: datetime) -> bool:
        latest = place.latest
        if latest is None or place.rose_at is None or points_of(place.counted) >= max_points_of(place.counted):
            return False
        return now - place.rose_at.astimezone(UTC) >= self.stuck_after

    def row(self, student: str, lang: str, now: datetime | None = None) -> RowView:
        _ = translator(lang)
        place = self.places[student]
        latest, now = place.latest, now or datetime.now(UTC)
        shared = sorted(set().union(*(self.owners.get(i, set()) for i in place.idents)) - {student})  # any attempt's
        if latest is None:
            blank = [Cell("", c.title_in(lang)) for _, c in self.rubric.checks()]
            return RowView(self.keys[student], student, "", "", "", blank, "", _("not connected yet"), shared)
        status = {c.id: c.status for c in place.counted}
        cells = [
            Cell(STATUS_CSS.get(status.get(c.id, ""), ""), f"{c.title_in(lang)}: {_(status.get(c.id, '—'))}")
            for _n, c in self.rubric.checks()
        ]
        step = next((c.task for c in place.counted if not c.passed), None)
        task = self.rubric.task(step) if step is not None else None
        state = _("done") if step is None else _("stuck") if self.stuck(place, now) else ""
        return RowView(
            key=self.keys[student],
            student=student,
            href=attempt_file(latest),
            step=task.title_in(lang) if task else "✔",
            score=f"{points_of(place.counted):g}/{max_points_of(place.counted):g}",
            cells=cells,
            changed=latest.graded_at.astimezone(UTC).strftime("%H:%M:%S UTC"),
            state=state,
            shared=shared,
        )

    def rows(self, lang: str) -> list[RowView]:
        now = datetime.now(UTC)
        return [self.row(name, lang, now) for name in self.places]

    def rates(self, lang: str) -> list[Rate]:
        """Each check's pass rate over the students connected so far."""
        share = self.connected or 1
        return [Rate(c.id, c.title_in(lang), round(100 * self.passing[c.id] / share)) for _, c in self.rubric.checks()]

    def stuck_now(self) -> set[str]:
        """The rows of students who are stuck at this moment (they change without an attempt)."""
        now = datetime.now(UTC)
        return {self.keys[name] for name, place in self.places.items() if self.stuck(place, now)}
