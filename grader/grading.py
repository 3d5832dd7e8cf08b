"""One grading run: load the rubric, collect once, evaluate purely, store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .collect import DEFAULT_PROBE_IMAGE, collect
from .errors import UsageError
from .evaluate import evaluate
from .outcome import Outcome
from .rubric import load
from .rubric.model import Rubric
from .snapshot import Snapshot
from .standing import Mode, with_progress

if TYPE_CHECKING:
    from .store import Attempt, Store


@dataclass
class Graded:
    student: str
    rubric: Rubric
    snapshot: Snapshot
    outcome: Outcome
    graded_at: str
    attempt_id: int | None = None


def grade(
    rubric_ref: str,
    *,
    student: str,
    source: str = "grade",
    db_url: str | None = None,
    docker_host: str | None = None,
    task: int | None = None,
    lang: str = "en",
    probe_image: str = DEFAULT_PROBE_IMAGE,
    store: bool = True,
    mode: Mode | None = None,
) -> Graded:
    """Grade one daemon. In progress mode (the rubric's, or ``mode``) a checkpoint the
    student proved in an earlier stored attempt keeps its credit in the result."""
    rubric = load(rubric_ref)
    if task is not None and not 1 <= task <= len(rubric.tasks):
        raise UsageError(f"--task must be between 1 and {len(rubric.tasks)} for {rubric.id}")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Opening the store (SQLAlchemy's import, the schema) overlaps with the probes' waiting.
        database = pool.submit(_open_store, db_url) if store else None
        snapshot = collect(rubric.probes(task), docker_host=docker_host, probe_image=probe_image)
        outcome = evaluate(rubric, snapshot, lang=lang, task=task)
        graded = Graded(student, rubric, snapshot, outcome, datetime.now(UTC).isoformat(timespec="seconds"))
        if database is not None:
            db = database.result()
            graded.attempt_id = db.record(student, rubric, snapshot, outcome, source)
            if (mode or rubric.mode) == "progress":
                checks = with_progress(outcome.checks, db.attempts(rubric.id, student))
                graded.outcome = outcome.model_copy(update={"checks": checks})
    return graded


@dataclass
class Regraded:
    attempts: int
    students: int
    changed: list[tuple[str, float, float]]  # (student, old score, new score) of attempts whose score moved
    skipped: int  # attempts without a snapshot (the daemon could not be graded)


def regrade(
    rubric_ref: str, *, db_url: str | None = None, student: str | None = None, progress: Any = None
) -> Regraded:
    """Re-evaluate the stored snapshots of ``rubric_ref``'s attempts with that rubric as it
    is now (no daemon), and store the new results in place of the old ones."""
    from .store import Store

    rubric = load(rubric_ref)
    db = Store(db_url, create=False)
    attempts = db.attempts(rubric.id, student, checks=False)
    graded = [a for a in attempts if a.snapshot_digest]
    by_digest: dict[str, list[Attempt]] = {}
    for attempt in graded:
        by_digest.setdefault(attempt.snapshot_digest, []).append(attempt)
    outcomes: dict[int, Outcome] = {}
    for snapshot in db.snapshots(by_digest):
        outcome = evaluate(rubric, snapshot)
        for attempt in by_digest[snapshot.digest]:
            outcomes[attempt.id] = outcome
        if progress:
            progress(len(by_digest[snapshot.digest]))
    db.replace_outcomes(rubric, outcomes)
    changed = [(a.student, a.score, outcomes[a.id].score) for a in graded if a.score != outcomes[a.id].score]
    return Regraded(len(outcomes), len({a.student for a in graded}), changed, len(attempts) - len(graded))


def _open_store(db_url: str | None) -> Store:
    from .store import Store

    return Store(db_url)
