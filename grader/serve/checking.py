"""Checking the live class's bundles: ``Checker.receive`` (parse, verify the digests and the
seal, score the snapshot again) is most of what a submission costs the server, some 5 ms of CPU,
and all of it holds Python's lock. With ``workers``, it runs in that many worker processes of
the server (``grader serve --workers``), so that one server uses the machine's cores
while its own process answers requests, stores and feeds the dashboards; with none, a few at a
time in the server's own threads.

Each worker is linked to the server's event loop by a socket pair: a request is the sender's
name and the bundle's bytes, each after its length; an answer is the pickled checked attempt
without its rubric (the server has the same one: pickling a rubric costs more than the rest),
or the Refused or BundleError that says why not. A worker answers in the order it was asked,
so the server only keeps each worker's waiting requests in order (no executor's threads hand
answers to the loop). A worker that ends (killed, out of memory) is replaced: the submissions
it had are answered "busy" and their students' queues send them again. Workers ignore Ctrl-C
(the server stops them) and end with the server, also when it is killed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from ..importing import Checker
    from ..store import NewAttempt

log = logging.getLogger("grader.serve")
THREADS = 4  # without workers: bundles checked at once in the server's threads
WAITING = 200  # submissions that may wait for a check: past it a request is answered "busy"
MAX_WORKERS = 16
SIZES = struct.Struct("!II")  # a request: its sender's length and its bundle's, in bytes
SIZE = struct.Struct("!I")  # an answer: its length in bytes
ANSWER_BUFFER = 1 << 20  # bytes of answers read ahead (one is some 100 KB)
STOPPING = 5.0  # seconds a worker has to end when the server stops, before it is killed


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
        self.links: list[_Link] = []
        self.slots = asyncio.Semaphore(THREADS)
        self.waiting = 0

    async def start(self) -> None:
        """Start the workers and wait until each has loaded its rubrics."""
        self.links = [await _Link.start(self.setup, self._replace) for _ in range(self.workers)]
        await asyncio.gather(*(link.ready for link in self.links))

    async def stop(self) -> None:
        links, self.links = self.links, []
        for link in links:
            link.close()
        await asyncio.gather(*(asyncio.to_thread(link.end) for link in links))

    async def __call__(self, data: bytes, sender: str) -> NewAttempt:
        """The checked attempt of ``data`` sent by ``sender``; Refused or BundleError when it is
        not taken, Busy when it cannot be checked now."""
        if self.waiting >= WAITING:
            raise Busy()
        self.waiting += 1
        try:
            if not self.links:
                async with self.slots:
                    return await run_in_threadpool(self.checker.receive, data, sender)
            link = min(self.links, key=lambda one: len(one.asked))
            rubric_id, fields = await link.ask(data, sender)
            return _attempt(self.checker.rubric(rubric_id), fields)
        finally:
            self.waiting -= 1

    async def _replace(self, ended: _Link) -> None:
        """A worker ended: another in its place for the next submissions; one that ended as it
        started is not replaced (the others check, or the server's threads when none is left)."""
        if ended not in self.links:
            return
        if ended.ready.exception() is not None:
            log.error("%s; checking with the other workers", ended.ready.exception())
            self.links.remove(ended)
            return
        log.warning("a checking worker ended; starting another")
        try:
            self.links[self.links.index(ended)] = await _Link.start(self.setup, self._replace)
        except OSError as exc:  # no process can be started now (too many, out of memory)
            log.error("cannot start a checking worker (%s); checking with the others", exc.strerror or exc)
            self.links.remove(ended)


class _Link:
    """One worker process and the server's end of the socket to it."""

    def __init__(self, process: BaseProcess, writer: asyncio.StreamWriter, on_end: Any):
        self.process, self.writer, self.on_end = process, writer, on_end
        self.asked: collections.deque[asyncio.Future[tuple[str, dict[str, Any]]]] = collections.deque()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.task: asyncio.Task[None] | None = None  # reading its answers (held: the loop keeps only a weak reference)

    @classmethod
    async def start(cls, setup: tuple[list[str], Path], on_end: Any) -> _Link:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")  # the server has threads: never fork it
        # PR_SET_PDEATHSIG (in the worker) is sent when the thread that started it ends: this
        # is the event loop's, which lives as long as the server.
        process = context.Process(target=_work, args=(theirs, *setup), name="grader-check", daemon=True)
        process.start()
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours, limit=ANSWER_BUFFER)
        link = cls(process, writer, on_end)
        link.task = asyncio.create_task(link._read(reader))
        return link

    async def ask(self, data: bytes, sender: str) -> tuple[str, dict[str, Any]]:
        """The worker's answer to ``data`` from ``sender``: its rubric's id and the checked
        attempt's fields; what it raised; Busy when it ends first."""
        if self.closed:
            raise Busy()
        name = sender.encode()
        answer: asyncio.Future[tuple[str, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.asked.append(answer)
        self.writer.writelines((SIZES.pack(len(name), len(data)), name, data))
        return await answer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            await reader.readexactly(1)
            self.ready.set_result(None)
            while True:
                (size,) = SIZE.unpack(await reader.readexactly(SIZE.size))
                checked, value = pickle.loads(await reader.readexactly(size))
                answer = self.asked.popleft()
                if answer.done():  # its request has gone (the client hung up)
                    continue
                if checked:
                    answer.set_result(value)
                else:
                    answer.set_exception(value)
        except (asyncio.IncompleteReadError, OSError):  # it ended (or was stopped)
            pass
        except Exception:  # an answer that cannot be read: the worker is ended, and replaced
            log.exception("a checking worker's answer cannot be read")
            self.process.kill()
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"a checking worker ended as it started (exit {self._exit()})"))
        was_closed, self.closed = self.closed, True
        for answer in self.asked:
            if not answer.done():
                answer.set_exception(Busy())
        self.asked.clear()
        self.writer.close()
        self.process.join(0)  # reaped, if it has ended already
        if not was_closed:
            await self.on_end(self)

    def _exit(self) -> int | None:
        self.process.join(1)
        return self.process.exitcode

    def close(self) -> None:
        """No more requests: the worker ends once it has answered those it has."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.writer.transport.write_eof()

    def end(self) -> None:
        """Wait for the worker to end (killed past STOPPING)."""
        self.process.join(STOPPING)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()


def _attempt(rubric: Any, fields: dict[str, Any]) -> NewAttempt:
    from ..store import NewAttempt

    return NewAttempt(rubric=rubric, **fields)


# -- in a worker process -----------------------------------------------------------------------


def _work(link: socket.socket, rubric_refs: list[str], secret: Path) -> None:
    """A worker: load the rubrics, say so (one byte), then answer each request in turn until the
    server closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    with contextlib.suppress(OSError, AttributeError):  # Linux: end with the server, even a killed one
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the server ended before that took effect
            os._exit(0)
    from .. import store  # noqa: F401 - Checker.check's NewAttempt: loaded now, not in the first check (0.8 s)
    from ..importing import Checker

    checker = Checker(rubric_refs=rubric_refs, secret=secret)
    stream = link.makefile("rb")
    link.sendall(b"\x01")
    while sizes := stream.read(SIZES.size):
        if len(sizes) < SIZES.size:
            return
        sender_size, data_size = SIZES.unpack(sizes)
        sender, data = stream.read(sender_size).decode(), stream.read(data_size)
        try:
            answer = (True, _receive(checker, data, sender))
        except Exception as exc:  # noqa: BLE001 - Refused, BundleError or a bug: the server answers it
            answer = (False, exc)
        try:
            payload = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an exception that cannot be pickled
            payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        link.sendall(SIZE.pack(len(payload)) + payload)


def _receive(checker: Checker, data: bytes, sender: str) -> tuple[str, dict[str, Any]]:
    new = checker.receive(data, sender)
    fields = {f.name: getattr(new, f.name) for f in dataclasses.fields(new) if f.name != "rubric"}
    return new.rubric.id, fields
