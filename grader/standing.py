"""A student's standing on a rubric under a grading mode, from their stored attempts.

- ``final``: the latest successful attempt of the whole lab counts, as it is (a self-check of
  one task is not a whole attempt).
- ``progress``: the latest successful attempt counts, but a checkpoint check proved in any
  attempt keeps its credit (the way step-by-step labs verify each step as it is done).

Attempts that could not grade the daemon (``error``) never count as a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import TYPE_CHECKING, Literal

from .i18n import Text, stored
from .outcome import CheckResult, max_points_of, points_of

if TYPE_CHECKING:
    from .store import Attempt

Mode = Literal["final", "progress"]
PARTIAL = "-task"  # ends the source of an attempt that checked one task only (``check --task N``)


@dataclass(frozen=True)
class Standing:
    student: str
    attempts: list[Attempt]  # in time order, failed ones included
    latest: Attempt | None  # the latest successful attempt
    checks: list[CheckResult]  # the results that count under the mode
    error: str | None  # why the latest attempt could not grade the daemon, if it could not

    @property
    def score(self) -> float:
        return points_of(self.checks)

    @property
    def max_score(self) -> float:
        return max_points_of(self.checks)

    @property
    def best(self) -> float | None:
        scores = [a.score for a in self.attempts if a.ok]
        return max(scores) if scores else None


def standing(student: str, attempts: list[Attempt], mode: Mode) -> Standing:
    attempts = sorted(attempts, key=lambda a: (a.graded_at, a.id))
    graded = [a for a in attempts if a.ok]
    latest = graded[-1] if graded else None
    if mode == "final":
        whole = [a for a in graded if not a.source.endswith(PARTIAL)]
        latest = whole[-1] if whole else None
        checks = list(latest.checks) if latest else []
    else:
        # Each check's latest result (a self-check of one task updates only that task's checks).
        newest = {c.id: c for a in graded for c in a.checks}
        checks = with_progress(list(newest.values()), graded)
    error = attempts[-1].error if attempts and not attempts[-1].ok else None
    return Standing(student, attempts, latest, checks, error)


def with_progress(checks: list[CheckResult], attempts: list[Attempt]) -> list[CheckResult]:
    """``checks`` where a failed checkpoint proved in one of ``attempts`` gets that attempt's credit."""
    proved: dict[str, CheckResult] = {}
    for attempt in attempts:
        for c in attempt.checks:
            if c.when == "checkpoint" and c.passed and c.id not in proved:
                when = f"{attempt.graded_at:%Y-%m-%d %H:%M}"
                message = Text("proved at {when} UTC (checkpoint keeps its credit)", when=when)
                phrases = {**c.phrases, "message": stored(message)}
                proved[c.id] = c.model_copy(update={"message": message, "phrases": phrases})
    return [c if c.passed else proved.get(c.id, c) for c in checks]


def standings(attempts: list[Attempt], mode: Mode) -> list[Standing]:
    """One standing per student, for attempts of one rubric (ordered by student as the store gives them)."""
    by_student = sorted(attempts, key=lambda a: a.student)
    return [standing(name, list(group), mode) for name, group in groupby(by_student, key=lambda a: a.student)]
