"""Rubric + Snapshot -> Outcome: a pure function, no I/O. Results are in English, with the
templates of their messages and computed hints (``CheckResult.phrases``), so that ``localised``
says them in a reader's language whenever they are shown."""

from __future__ import annotations

from .checks import KINDS, Verdict
from .i18n import Text, say, stored
from .outcome import CheckResult, Outcome
from .rubric.model import CheckBase, Rubric
from .snapshot import Snapshot


def evaluate(rubric: Rubric, snapshot: Snapshot, *, task: int | None = None) -> Outcome:
    results: dict[str, CheckResult] = {}
    for number, check in rubric.checks():
        if task is not None and number != task:
            continue
        results[check.id] = _one(number, check, snapshot, results)
    return Outcome(
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        rubric_digest=rubric.digest,
        snapshot_digest=snapshot.digest,
        checks=list(results.values()),
    )


def localised(results: list[CheckResult], rubric: Rubric, lang: str) -> list[CheckResult]:
    """``results`` as a reader of ``lang`` sees them: the rubric's titles and hints in that
    language, messages and computed hints said through the catalog. Results stored before
    their templates were kept (``phrases``) keep their English message and hint."""
    if lang == "en":
        return results
    checks = {c.id: c for _, c in rubric.checks()}
    return [_localised(r, checks.get(r.id), lang) for r in results]


def _localised(result: CheckResult, check: CheckBase | None, lang: str) -> CheckResult:
    if check is None:  # a check the rubric no longer has
        return result
    phrases = {key: Text.load(value) for key, value in result.phrases.items()}
    hint = result.hint
    if hint and "hint" in phrases:
        hint = _hint(say(phrases["hint"], lang), check.hint.get(lang))
    message = say(phrases["message"], lang) if "message" in phrases else result.message
    return result.model_copy(update={"title": check.title_in(lang), "message": message, "hint": hint})


def _hint(computed: str, static: str) -> str:
    """The computed hint, then the rubric's. The computed one is left out when the rubric's
    already gives its command, or when it is only a command template (``docker run ... x``)
    and the rubric's hint says more."""
    command = computed.rsplit(": ", 1)[-1]
    if static and command and (command in static or "..." in command):
        return static
    return " ".join(h for h in (computed, static) if h)


def _one(number: int, check: CheckBase, snapshot: Snapshot, done: dict[str, CheckResult]) -> CheckResult:
    base = {
        "id": check.id,
        "title": check.title_in(),
        "task": number,
        "kind": check.kind,
        "when": check.when,
        "max_points": check.points,
    }
    failed = [n for n in check.needs if n in done and not done[n].passed]
    if failed:
        message = Text("blocked: needs {checks}", checks=", ".join(failed))
        return CheckResult(
            **base,
            status="blocked",
            points=0,
            message=message,
            hint=check.hint.en,
            phrases={"message": stored(message), "hint": ""},
        )
    try:
        verdict = KINDS[check.kind].evaluate(check.params, snapshot)
    except Exception as exc:  # noqa: BLE001 - one broken fact is an error result; the run goes on
        message = Text("could not evaluate: {error}", error=f"{type(exc).__name__}: {exc}")
        verdict = Verdict(False, error=True, message=message)
    fraction = 1.0 if verdict.passed else (verdict.fraction or 0.0)
    status = "passed" if verdict.passed else "error" if verdict.error else "failed"
    hint = "" if verdict.passed else _hint(verdict.hint, check.hint.en)
    return CheckResult(
        **base,
        status=status,
        points=round(check.points * fraction, 2),
        expected=verdict.expected,
        actual=verdict.actual,
        message=verdict.message,
        hint=hint,
        evidence=verdict.evidence,
        phrases={"message": stored(verdict.message), "hint": stored(verdict.hint)},
    )
