"""Group commit: the live class's checked bundles are stored by one writer, many attempts to a
transaction. A request waits for the commit of its attempt's batch before it is answered, so
nothing is acknowledged that is not stored; a batch that cannot be committed answers every
request in it with the store's error (and the students' queues send them again). While one
batch commits, the next gathers: the busier the class, the bigger the batches, and a commit
costs the store about what one attempt's did (300 students at a change every 2 s need 150
attempts a second; one transaction each took 13 ms)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..errors import StoreError
from .checking import Busy

if TYPE_CHECKING:
    from ..importing import Importer, Taken
    from ..store import NewAttempt
    from .fanout import Fanout

log = logging.getLogger("grader.serve")
BATCH = 100  # attempts in one transaction at most
# Seconds a batch gathers after its first attempt: a transaction's own cost (the students'
# rows, the rubric's, the commit: some 5 ms of the server's CPU) is shared by the attempts
# that came meanwhile (7 or so at 150 a second) instead of being paid for nearly each one.
GATHER = 0.05
WAITING = 400  # attempts that may wait for a commit: past it a request is answered "busy"


class Writer:
    def __init__(self, importer: Importer, fanout: Fanout):
        self.importer, self.fanout = importer, fanout
        self.queue: asyncio.Queue[tuple[NewAttempt, asyncio.Future[Taken]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def store(self, attempt: NewAttempt) -> Taken:
        """``attempt`` stored (or skipped as a snapshot its student has), once its batch has
        committed; a StoreError when it could not be, Busy past WAITING."""
        if self.queue.qsize() >= WAITING:
            raise Busy()
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        answer: asyncio.Future[Taken] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((attempt, answer))
        return await answer

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            await asyncio.sleep(GATHER)
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                taken = await asyncio.to_thread(self.importer.keep, [attempt for attempt, _ in batch])
            except Exception as exc:  # StoreError, or a bug: either way, every request in the batch hears it
                if not isinstance(exc, StoreError):
                    log.exception("cannot store %d submissions", len(batch))
                for _, answer in batch:
                    if not answer.done():  # its request may have gone (the client hung up)
                        answer.set_exception(exc)
                continue
            for (_, answer), one in zip(batch, taken, strict=True):
                if not answer.done():
                    answer.set_result(one)
            stored = [one.attempt for one in taken if one.attempt is not None]
            try:
                if stored:
                    await self.fanout.publish(stored)
            except Exception:  # stored and answered: the dashboards see them when they reload
                log.exception("cannot tell the dashboards of %d attempts", len(stored))
