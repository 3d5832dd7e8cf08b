"""Regrade: re-evaluate stored snapshots with a rubric as it is now, without any daemon.

Every attempt of the rubric's id that has a snapshot is scored again; the new results
replace the old ones in one transaction (the old rubric version stays stored, so the old
scores can always be recomputed). Snapshots are parsed and evaluated in worker processes
when there are many of them; the main process streams them from the store and writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING

from .evaluate import evaluate
from .outcome import Outcome
from .rubric import load
from .rubric.model import Rubric
from .snapshot import Snapshot
from .util import batched

if TYPE_CHECKING:
    from .store import Attempt

CHUNK = 100  # snapshots per task sent to a worker
IN_PROCESS = 4 * CHUNK  # fewer snapshots than this are evaluated without starting workers


@dataclass
class Regraded:
    attempts: int
    students: int
    changed: list[tuple[str, float, float]]  # (student, old score, new score) of attempts whose score moved
    skipped: int  # attempts without a snapshot (the daemon could not be graded)


def regrade(
    rubric_ref: str,
    *,
    db_url: str | None = None,
    student: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Regraded:
    """``progress(done, total)`` is called as attempts are re-evaluated."""
    from .store import Store

    rubric = load(rubric_ref)
    db = Store(db_url, create=False)
    attempts = db.attempts(rubric.id, student, checks=False)
    graded = [a for a in attempts if a.snapshot_digest]
    by_digest: dict[str, list[Attempt]] = {}
    for attempt in graded:
        by_digest.setdefault(attempt.snapshot_digest or "", []).append(attempt)
    scores: dict[int, float] = {}

    def outcomes() -> Iterator[tuple[int, Outcome]]:
        for digest, outcome in _evaluate_all(rubric_ref, rubric, db.snapshot_texts(by_digest), len(by_digest)):
            for attempt in by_digest[digest]:
                scores[attempt.id] = outcome.score
                yield attempt.id, outcome
            if progress:
                progress(len(scores), len(graded))

    db.replace_outcomes(rubric, outcomes())
    changed = [(a.student, a.score, scores[a.id]) for a in graded if a.score != scores[a.id]]
    return Regraded(len(scores), len({a.student for a in graded}), changed, len(attempts) - len(graded))


def _evaluate_all(rubric_ref: str, rubric: Rubric, texts: Iterable[str], count: int) -> Iterator[tuple[str, Outcome]]:
    if count < IN_PROCESS:
        _load_rubric(rubric_ref, rubric)
        yield from _evaluate(list(texts))
        return
    workers = os.cpu_count() or 1
    context = get_context("spawn")  # no fork of a process holding database connections
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_load_rubric, initargs=(rubric_ref,)) as pool:
        pending: list[Future[list[tuple[str, Outcome]]]] = []
        for chunk in batched(texts, CHUNK):
            pending.append(pool.submit(_evaluate, chunk))
            if len(pending) > 2 * workers:  # bounded: snapshots are read as they are needed
                yield from pending.pop(0).result()
        for future in pending:
            yield from future.result()


_rubric: list[Rubric] = []  # the rubric of this (worker) process


def _load_rubric(rubric_ref: str, rubric: Rubric | None = None) -> None:
    _rubric[:] = [rubric or load(rubric_ref)]


def _evaluate(texts: list[str]) -> list[tuple[str, Outcome]]:
    results = []
    for text in texts:
        snapshot = Snapshot.from_json(text)
        results.append((snapshot.digest, evaluate(_rubric[0], snapshot)))
    return results
