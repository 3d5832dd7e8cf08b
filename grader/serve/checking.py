"""Checking the live class's bundles: ``Checker.receive`` (parse, verify the digests and the
seal, score the snapshot again) is most of what a submission costs the server, some 5 ms of CPU,
and all of it holds Python's lock. With ``workers``, it runs in that many worker processes of
the server (``grader serve --workers``), so that one server uses the machine's cores
while its own process answers requests, stores and feeds the dashboards; with none, a few at a
time in the server's own threads.

A worker gets a request's bytes and gives back the checked attempt without its rubric (the
server has the same one: pickling a rubric costs more than the rest), or the Refused or
BundleError that says why not. A worker that ends (killed, out of memory) is replaced: the
submissions it had are answered "busy" and their students' queues send them again. Workers
ignore Ctrl-C (the server stops them) and end with the server, also when it is killed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from ..importing import Checker
    from ..store import NewAttempt

log = logging.getLogger("grader.serve")
THREADS = 4  # without workers: bundles checked at once in the server's threads
WAITING = 200  # submissions that may wait for a check: past it a request is answered "busy"
MAX_WORKERS = 16


class Busy(Exception):
    """More submissions wait than WAITING, or a worker ended under them: sent again later."""


def default_workers() -> int:
    """As many as the cores this process may use, none on one core. Not one fewer: the server's
    own process needs some half a core at 150 submissions a second, a worker more than one, so
    on two cores a single worker was what held the class back (and on one, workers only add the
    cost of handing each bundle over)."""
    cores = len(os.sched_getaffinity(0))
    return min(MAX_WORKERS, cores) if cores > 1 else 0


class Checking:
    def __init__(self, checker: Checker, workers: int, rubric_refs: list[str], secret: Path):
        self.checker, self.workers = checker, workers
        self.setup = (rubric_refs, secret)
        self.pool: ProcessPoolExecutor | None = None
        self.slots = asyncio.Semaphore(THREADS)
        self.waiting = 0

    async def start(self) -> None:
        """Start the workers and wait until each has loaded its rubrics."""
        if self.workers:
            await asyncio.to_thread(self._start)

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # the server has threads: never fork it
        self.pool = ProcessPoolExecutor(self.workers, context, initializer=_start_worker, initargs=self.setup)
        for ready in [self.pool.submit(_ready) for _ in range(self.workers)]:
            ready.result()

    async def stop(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    async def __call__(self, data: bytes, sender: str) -> NewAttempt:
        """The checked attempt of ``data`` sent by ``sender``; Refused or BundleError when it is
        not taken, Busy when it cannot be checked now."""
        if self.waiting >= WAITING:
            raise Busy()
        self.waiting += 1
        try:
            if self.pool is None:
                async with self.slots:
                    return await run_in_threadpool(self.checker.receive, data, sender)
            pool = self.pool
            try:
                rubric_id, fields = await asyncio.wrap_future(pool.submit(_receive, data, sender))
            except BrokenProcessPool:
                await self._replace(pool)
                raise Busy() from None
            return _attempt(self.checker.rubric(rubric_id), fields)
        finally:
            self.waiting -= 1

    async def _replace(self, broken: ProcessPoolExecutor) -> None:
        """A worker ended: a new pool for the next submissions (once, however many saw it)."""
        if self.pool is not broken:
            return
        log.warning("a checking worker ended; starting the workers again")
        self.pool = None
        broken.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._start)


def _attempt(rubric: Any, fields: dict[str, Any]) -> NewAttempt:
    from ..store import NewAttempt

    return NewAttempt(rubric=rubric, **fields)


# -- in a worker process -----------------------------------------------------------------------

_checker: Checker | None = None


def _start_worker(rubric_refs: list[str], secret: Path) -> None:
    global _checker  # noqa: PLW0603 - the worker's one Checker, made once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    with contextlib.suppress(OSError, AttributeError):  # Linux: end with the server, even a killed one
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        # PR_SET_PDEATHSIG: sent when the thread that started this process ends. That is a thread
        # of the server's default executor (``Checking._start`` runs there), which lives as long
        # as the server's event loop: start workers from no shorter-lived thread.
        libc.prctl(1, signal.SIGKILL)
        if os.getppid() == 1:  # the server ended before that took effect
            os._exit(0)
    from ..importing import Checker

    _checker = Checker(rubric_refs=rubric_refs, secret=secret)


def _ready() -> bool:
    return _checker is not None


def _receive(data: bytes, sender: str) -> tuple[str, dict[str, Any]]:
    assert _checker is not None
    new = _checker.receive(data, sender)
    fields = {f.name: getattr(new, f.name) for f in dataclasses.fields(new) if f.name != "rubric"}
    return new.rubric.id, fields
