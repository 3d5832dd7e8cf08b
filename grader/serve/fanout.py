"""Changes to every open dashboard: a stored attempt's id goes to the boards (one per rubric)
of every server process, which tell their open event streams which rows changed (by the rows'
keys).

One process (SQLite): the id goes straight to this process's boards. Several processes sharing
one PostgreSQL: the id is sent with ``NOTIFY`` and every process (this one too) takes it from
its ``LISTEN`` connection, so a dashboard served by one process sees what another received.
Notifications sent while that connection is down are lost, so each time it listens (again) the
process reads the attempts stored since the last it had (``catch_up``).
A stream that falls behind (a stalled browser) is dropped: its browser connects again and
reads the whole board then."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..text import printable

if TYPE_CHECKING:
    from ..store import Attempt, Store
    from .board import Board

log = logging.getLogger("grader.serve")
CHANNEL = "grader_attempts"
QUEUED = 256  # changes a stream may lag behind before it is dropped
TICK = 5.0  # seconds between looks for students who became stuck without an attempt
RECONNECT = 1.0  # seconds before listening again after the connection was lost
# A catch-up reads from this many ids before the last one seen: ids are handed out when a
# transaction inserts and seen when it commits, so a few may commit after a higher one.
# Taking an attempt twice changes nothing.
IN_FLIGHT = 256
# Attempts whose ids are remembered as taken: a notification of one this process stored itself
# (PostgreSQL tells every listener, the sender too) is not read again. A class's notifications
# arrive within seconds; 300 students send some 1,500 attempts in ten.
TAKEN = 4096


class Fanout:
    def __init__(self, store: Store, boards: list[Board]):
        self.store, self.boards = store, boards
        self.rows = {key for board in boards for key in board.keys.values()}  # every row's key
        self.streams: set[asyncio.Queue[set[str]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stuck: set[str] = set()
        self.tasks: list[asyncio.Task[None]] = []
        self.last = 0  # the highest attempt id taken
        self.taken: dict[int, None] = {}  # the ids of the last TAKEN attempts taken, oldest first

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for board in self.boards:
            for attempt in await asyncio.to_thread(self.store.attempts, board.rubric.id):
                self.take(attempt)
        self.stuck = self.stuck_now()
        self.tasks.append(asyncio.create_task(self._ticks()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    def subscribe(self) -> asyncio.Queue[set[str]]:
        stream: asyncio.Queue[set[str]] = asyncio.Queue(QUEUED)
        stream.put_nowait(set(self.rows))  # the whole board first: nothing missed meanwhile
        self.streams.add(stream)
        return stream

    def subscribed(self, stream: asyncio.Queue[set[str]]) -> bool:
        return stream in self.streams

    def unsubscribe(self, stream: asyncio.Queue[set[str]]) -> None:
        self.streams.discard(stream)

    def end_streams(self) -> None:
        """End every open event stream (the server is stopping): safe from a signal handler."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._end_streams)

    def _end_streams(self) -> None:
        streams, self.streams = self.streams, set()
        for stream in streams:
            if stream.full():
                stream.get_nowait()
            stream.put_nowait(set())  # wakes it: no longer subscribed, it returns

    async def publish(self, attempts: list[Attempt]) -> None:
        """Attempts this process stored: to its boards as they are (read again, they would cost
        the store as much as storing them did), and, with PostgreSQL, to the other processes'."""
        self.tell(set().union(*(self.take(attempt) for attempt in attempts)))

    async def deliver(self, attempt_ids: list[int]) -> None:
        """Attempts stored by any process, by id: those this process has not taken yet are read."""
        missing = [i for i in attempt_ids if i not in self.taken]
        if missing:
            attempts = await asyncio.to_thread(self.store.attempts, ids=missing)
            self.tell(set().union(*(self.take(attempt) for attempt in attempts)))

    async def catch_up(self) -> None:
        """Take the attempts stored since about the last one taken (notifications lost meanwhile)."""
        attempts = await asyncio.to_thread(self.store.attempts, after=max(0, self.last - IN_FLIGHT))
        self.tell(set().union(*(self.take(a) for a in attempts)))

    def take(self, attempt: Attempt) -> set[str]:
        """``attempt`` on every board; the keys of the rows it changed."""
        self.last = max(self.last, attempt.id)
        self.taken[attempt.id] = None
        if len(self.taken) > TAKEN:
            del self.taken[next(iter(self.taken))]
        return {board.keys[name] for board in self.boards for name in board.add(attempt)}

    def stuck_now(self) -> set[str]:
        return set().union(*(board.stuck_now() for board in self.boards))

    def tell(self, keys: set[str]) -> None:
        if not keys:
            return
        for stream in list(self.streams):
            try:
                stream.put_nowait(keys)
            except asyncio.QueueFull:
                self.streams.discard(stream)  # its stream ends at its next heartbeat

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = self.stuck_now()
            self.tell(now ^ self.stuck)
            self.stuck = now


class PostgresFanout(Fanout):
    """``NOTIFY`` on publish, ``LISTEN`` in a thread: every process's board gets every attempt."""

    async def start(self) -> None:
        await super().start()
        self.stopped = threading.Event()
        threading.Thread(target=self._listen, name="listen", daemon=True).start()

    async def stop(self) -> None:
        self.stopped.set()
        await super().stop()

    async def publish(self, attempts: list[Attempt]) -> None:
        await super().publish(attempts)
        payload = ",".join(str(int(a.id)) for a in attempts)  # a batch's: at most some 1,000 of NOTIFY's 8,000 bytes

        def notify() -> None:
            with self.store.engine.connect() as connection:
                connection.exec_driver_sql(f"SELECT pg_notify('{CHANNEL}', '{payload}')")
                connection.commit()

        await asyncio.to_thread(notify)

    def _listen(self) -> None:
        import psycopg

        url = self.store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self.stopped.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._soon(self.catch_up())  # what was stored while nobody listened
                    for note in connection.notifies():
                        self._soon(self.deliver([int(i) for i in note.payload.split(",")]))
            except (psycopg.Error, ValueError) as exc:
                log.warning("lost the PostgreSQL notifications (%s); listening again", printable(str(exc)))
                self.stopped.wait(RECONNECT)

    def _soon(self, work: Coroutine[Any, Any, None]) -> None:
        """``work`` on the server's loop, from the listening thread."""
        if self.loop is None:
            work.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(work, self.loop)
        except RuntimeError:  # the loop closed: the server is stopping
            work.close()


def fanout(store: Store, boards: list[Board]) -> Fanout:
    return PostgresFanout(store, boards) if store.engine.dialect.name == "postgresql" else Fanout(store, boards)
