"""Rubric + Snapshot -> Outcome: a pure function, no I/O."""

from __future__ import annotations

from .checks import KINDS, Verdict
from .i18n import Text, say
from .outcome import CheckResult, Outcome
from .rubric.model import CheckBase, Rubric
from .snapshot import Snapshot


def evaluate(rubric: Rubric, snapshot: Snapshot, *, lang: str = "en", task: int | None = None) -> Outcome:
    results: dict[str, CheckResult] = {}
    for number, check in rubric.checks():
        if task is not None and number != task:
            continue
        results[check.id] = _one(number, check, snapshot, results, lang)
    return Outcome(
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        rubric_digest=rubric.digest,
        snapshot_digest=snapshot.digest,
        checks=list(results.values()),
    )


def _hint(computed: str, static: str) -> str:
    """The computed hint, then the rubric's. The computed one is left out when the rubric's
    already gives its command, or when it is only a command template (``docker run ... x``)
    and the rubric's hint says more."""
    command = computed.rsplit(": ", 1)[-1]
    if static and command and (command in static or command.endswith("...")):
        return static
    return " ".join(h for h in (computed, static) if h)


def _one(number: int, check: CheckBase, snapshot: Snapshot, done: dict[str, CheckResult], lang: str) -> CheckResult:
    base = {
        "id": check.id,
        "title": check.title,
        "task": number,
        "kind": check.kind,
        "when": check.when,
        "max_points": check.points,
    }
    failed = [n for n in check.needs if n in done and not done[n].passed]
    if failed:
        return CheckResult(
            **base,
            status="blocked",
            points=0,
            message=say(Text("blocked: needs {checks}", checks=", ".join(failed)), lang),
            hint=check.hint.get(lang),
        )
    try:
        verdict = KINDS[check.kind].evaluate(check.params, snapshot)
    except Exception as exc:  # noqa: BLE001 - one broken fact is an error result; the run goes on
        verdict = Verdict(False, error=True, message=f"could not evaluate: {type(exc).__name__}: {exc}")
    fraction = 1.0 if verdict.passed else (verdict.fraction or 0.0)
    status = "passed" if verdict.passed else "error" if verdict.error else "failed"
    hint = "" if verdict.passed else _hint(say(verdict.hint, lang), check.hint.get(lang))
    return CheckResult(
        **base,
        status=status,
        points=round(check.points * fraction, 2),
        expected=verdict.expected,
        actual=verdict.actual,
        message=verdict.message,
        hint=hint,
        evidence=verdict.evidence,
    )
