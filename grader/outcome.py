"""Results of evaluating a rubric against a snapshot: plain data, no I/O."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["passed", "failed", "blocked", "error"]


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    task: int  # 1-based index of the rubric task (lab step)
    kind: str
    when: Literal["final", "checkpoint"] = "final"
    status: Status
    points: float
    max_points: float
    expected: Any = None
    actual: Any = None
    message: str = ""
    hint: str = ""
    evidence: list[str] = []  # probe keys whose output supports this result
    # The message and the computed part of the hint as ``grader.i18n.stored`` keeps them (a
    # template and its values), so that any page says them in its reader's language
    # (``evaluate.localised``); empty in results stored before they were kept.
    phrases: dict[str, Any] = {}

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def check_dict(c: CheckResult) -> dict[str, Any]:
    """One check's result in the JSON contract (docs/design.md) (``grade --format json``, exports)."""
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


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric_id: str
    rubric_version: str
    rubric_digest: str
    snapshot_digest: str
    checks: list[CheckResult]

    @property
    def score(self) -> float:
        return points_of(self.checks)

    @property
    def max_score(self) -> float:
        return max_points_of(self.checks)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def points_of(checks: list[CheckResult]) -> float:
    return round(sum(c.points for c in checks), 2)


def max_points_of(checks: list[CheckResult]) -> float:
    return round(sum(c.max_points for c in checks), 2)
