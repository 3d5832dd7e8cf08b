"""Batch grading of a whole class: every daemon in a roster, concurrently.

Each student ends with a stored attempt, or a stored error with its reason (unreachable,
TLS refused, timeout): a broken daemon never stops the batch and is never a zero.

Scale-out: ``worker=True`` processes on several machines share one PostgreSQL store. Each
enqueues the roster's students as jobs of the batch (idempotent) and claims them one at a
time with ``SELECT ... FOR UPDATE SKIP LOCKED``; the attempt is stored in the claim's own
transaction, which marks the job done, so no student is graded twice and a worker that
dies mid-student releases its claim with its connection.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .collect import DEFAULT_PROBE_IMAGE, TLSFiles, collect, connect
from .errors import DaemonUnreachable, StoreError, UsageError
from .evaluate import evaluate
from .roster import Target, read_roster, roster_bytes
from .rubric import load
from .rubric.model import Rubric

if TYPE_CHECKING:
    from .outcome import Outcome
    from .snapshot import Snapshot
    from .store import Job


@dataclass(frozen=True)
class Result:
    student: str
    status: str  # graded | unreachable | tls | timeout | error
    score: float | None = None
    max_score: float | None = None
    error: str | None = None
    seconds: float = 0.0


def batch_name(rubric: Rubric, roster: Path) -> str:
    """The default name of a scaled-out batch: the rubric and the roster's content."""
    return f"{rubric.id}-{hashlib.sha256(roster_bytes(roster)).hexdigest()[:12]}"


@dataclass
class Batch:
    """One batch run: ``run()`` grades the roster here; ``work()`` is a scale-out worker."""

    rubric_ref: str
    roster: Path
    db_url: str | None = None
    workers: int = 4
    timeout: float = 60
    probe_image: str = DEFAULT_PROBE_IMAGE
    class_tls: TLSFiles | None = None
    progress: Callable[[Result, int, int], None] | None = None  # (result, done, total)
    insecure_tcp: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if not 0 < self.timeout < math.inf:  # nan is neither
            raise UsageError(f"--timeout must be a number of seconds above 0, not {self.timeout:g}")
        self.rubric = load(self.rubric_ref)
        self.targets = read_roster(self.roster, self.class_tls, self.insecure_tcp)
        from .store import Store

        self.store = Store(self.db_url)  # opened (or made) only once the roster and rubric are good
        self.stop = threading.Event()
        self.results: list[Result] = []
        self.stopped_by: StoreError | None = None  # the store failed: no daemon is started after it

    def to_grade(self, only_failed: bool) -> list[Target]:
        if not only_failed:
            return self.targets
        graded = {a.student for a in self.store.attempts(self.rubric.id, checks=False) if a.ok}
        return [t for t in self.targets if t.student not in graded]

    def run(self, only_failed: bool = False) -> list[Result]:
        """Grade every target here, ``workers`` at a time. On Ctrl-C, no new daemon is
        started; the ones in progress finish (their probe containers are removed), and
        KeyboardInterrupt is raised again with ``results`` holding what was stored. When the
        store fails, no new daemon is started either, and its StoreError is raised."""
        targets = self.to_grade(only_failed)
        with self._collectors(), ThreadPoolExecutor(self.workers) as pool:
            futures = [pool.submit(self._grade, t) for t in targets]
            self._wait(pool, futures, len(targets))
        return self.results

    def _wait(self, pool: ThreadPoolExecutor, futures: list[Future[Result | None]], total: int) -> None:
        try:
            for future in as_completed(futures):
                result = future.result()
                if result is not None:
                    self._done(result, total)
        except (KeyboardInterrupt, UsageError, StoreError) as exc:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if isinstance(exc, StoreError):
                self.stopped_by = exc
            raise

    def work(self, batch: str, only_failed: bool = False) -> list[Result]:
        """A scale-out worker: enqueue the batch (idempotent), then claim and grade its
        students until none is left. Results are this worker's share."""
        targets = {t.student: t for t in self.targets}
        self.store.enqueue(batch, [t.student for t in self.to_grade(only_failed)])
        total = len(targets)
        worker = f"{socket.gethostname()}:{os.getpid()}"

        def loop() -> None:
            while not self.stop.is_set():
                with self.store.claim(batch, worker) as job:
                    if job is None:
                        return
                    target = targets.get(job.student)
                    if target is None:  # enqueued from another roster under the same batch name
                        raise UsageError(f"batch {batch} has student {job.student!r}, who is not in {self.roster}")
                    result = self._grade(target, job)
                if result is not None:
                    self._done(result, total)

        with self._collectors(), ThreadPoolExecutor(self.workers) as pool:
            self._wait(pool, [pool.submit(loop) for _ in range(self.workers)], total)
        return self.results

    @contextmanager
    def _collectors(self) -> Iterator[None]:
        """Where daemons are connected to, inspected, probed and scored. A daemon past its
        time is cancelled (no new probe starts) and its collection left to end here; leaving
        waits for those, so that their probe containers are removed before the batch ends."""
        self.collecting = ThreadPoolExecutor(self.workers, thread_name_prefix="collect")
        try:
            yield
        finally:
            self.collecting.shutdown(wait=True, cancel_futures=True)

    def _done(self, result: Result, total: int) -> None:
        self.results.append(result)
        if self.progress:
            self.progress(result, len(self.results), total)

    def _grade(self, target: Target, job: Job | None = None) -> Result | None:
        """Grade one daemon and store the attempt, or the reason it could not be graded.
        ``--timeout`` counts from when this daemon's collection starts (not while it waits for
        a free collector) and covers connecting, collecting and scoring. None: the batch was
        stopped before this daemon was started."""
        if self.stop.is_set():
            return None
        started = time.monotonic()
        cancel = threading.Event()
        began: Future[float] = Future()
        try:
            work = self.collecting.submit(self._collect, target, cancel, began)
            deadline = began.result() + self.timeout
            try:
                snapshot, outcome = work.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                cancel.set()  # its probes stop; its probe containers are removed as it ends
                message = f"{target.docker_host} timed out: not graded within {self.timeout:g} s"
                raise DaemonUnreachable(message, "timeout") from None
            self.store.record(target.student, self.rubric, snapshot, outcome, "batch", job=job)
            return Result(target.student, "graded", outcome.score, outcome.max_score, seconds=_since(started))
        except DaemonUnreachable as exc:
            status, error = exc.reason, str(exc)
        except (UsageError, StoreError):
            raise  # the batch itself cannot go on
        except Exception as exc:  # noqa: BLE001 - one broken daemon never stops the batch
            status, error = "error", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
        self.store.record_error(target.student, self.rubric, "batch", error, job=job)
        return Result(target.student, status, error=error, seconds=_since(started))

    def _collect(self, target: Target, cancel: threading.Event, began: Future[float]) -> tuple[Snapshot, Outcome]:
        began.set_result(time.monotonic())
        client = connect(target.docker_host, timeout=self.timeout, tls=target.tls, insecure_tcp=self.insecure_tcp)
        try:
            snapshot = collect(self.rubric.probes(), client=client, probe_image=self.probe_image, cancel=cancel)
            return snapshot, evaluate(self.rubric, snapshot)
        finally:
            client.close()


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)
