"""Regrade: re-evaluate stored snapshots with a rubric as it is now, without any daemon.

Every attempt of the rubric's id that has a snapshot is scored again; the new results
replace the old ones in one transaction (the old rubric version stays stored, so the old
scores can always be recomputed). With many snapshots, worker processes read, parse,
evaluate and encode them; the main process only writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TYPE_CHECKING

from .evaluate import evaluate
from .rubric import load
from .rubric.model import Rubric
from .snapshot import Snapshot
from .util import batched

if TYPE_CHECKING:
    from .store import Attempt, Encoded, Store

CHUNK = 100  # snapshots per task sent to a worker
WORKERS = os.cpu_count() or 1  # worker processes: evaluation is CPU-bound
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
    many = db.count_attempts(rubric.id, student) >= IN_PROCESS
    with _workers(rubric_ref, db.url) if many else nullcontext() as pool:  # they start while attempts are read
        attempts = db.attempts(rubric.id, student, checks=False)
        graded = [a for a in attempts if a.snapshot_digest]
        by_digest: dict[str, list[Attempt]] = {}
        for attempt in graded:
            by_digest.setdefault(attempt.snapshot_digest or "", []).append(attempt)
        scores: dict[int, float] = {}

        def outcomes() -> Iterator[tuple[int, Encoded]]:
            for digest, encoded in _evaluate_all(pool, rubric_ref, rubric, db, list(by_digest)):
                for attempt in by_digest[digest]:
                    scores[attempt.id] = encoded.score
                    yield attempt.id, encoded
                if progress:
                    progress(len(scores), len(graded))

        db.replace_outcomes(rubric, outcomes())
    changed = [(a.student, a.score, scores[a.id]) for a in graded if a.score != scores[a.id]]
    return Regraded(len(scores), len({a.student for a in graded}), changed, len(attempts) - len(graded))


def _workers(rubric_ref: str, db_url: str) -> ProcessPoolExecutor:
    context = get_context("spawn")  # no fork of a process holding database connections
    pool = ProcessPoolExecutor(WORKERS, mp_context=context, initializer=_start, initargs=(rubric_ref, db_url))
    pool.submit(int)  # starts the workers now
    return pool


def _evaluate_all(
    pool: ProcessPoolExecutor | None, rubric_ref: str, rubric: Rubric, db: Store, digests: list[str]
) -> Iterator[tuple[str, Encoded]]:
    """(digest, encoded outcome) for each snapshot: in the worker processes, which read the
    snapshots themselves, or in this process when there are few."""
    if pool is None:
        _start(rubric_ref, db.url, rubric, db)
        yield from _evaluate(digests)
        return
    pending: list[Future[list[tuple[str, Encoded]]]] = []
    for chunk in batched(digests, CHUNK):
        pending.append(pool.submit(_evaluate, chunk))
        if len(pending) > 2 * WORKERS:  # bounded: results are written as they come
            yield from pending.pop(0).result()
    for future in pending:
        yield from future.result()


_worker: dict[str, object] = {}  # this process's rubric and store


def _start(rubric_ref: str, db_url: str, rubric: Rubric | None = None, db: Store | None = None) -> None:
    from .store import Store

    _worker.update(rubric=rubric or load(rubric_ref), db=db or Store(db_url, create=False))


def _evaluate(digests: Iterable[str]) -> list[tuple[str, Encoded]]:
    from .store import Store, encode

    rubric, db = _worker["rubric"], _worker["db"]
    assert isinstance(rubric, Rubric) and isinstance(db, Store)
    results = []
    for text in db.snapshot_texts(digests):
        snapshot = Snapshot.from_json(text)
        results.append((snapshot.digest, encode(evaluate(rubric, snapshot))))
    return results
