"""Changes to every open dashboard: a stored attempt's id goes to the board of every server
process, which tells its open event streams which rows changed.

One process (SQLite): the id goes straight to this process's board. Several processes sharing
one PostgreSQL: the id is sent with ``NOTIFY`` and every process (this one too) takes it from
its ``LISTEN`` connection, so a dashboard served by one process sees what another received.
A stream that falls behind (a stalled browser) is dropped: its browser connects again and
reads the whole board then."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import Store
    from .board import Board

log = logging.getLogger("grader.serve")
CHANNEL = "grader_attempts"
QUEUED = 256  # changes a stream may lag behind before it is dropped
TICK = 5.0  # seconds between looks for students who became stuck without an attempt


class Fanout:
    def __init__(self, store: Store, board: Board):
        self.store, self.board = store, board
        self.streams: set[asyncio.Queue[set[str]]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stuck: set[str] = set()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for attempt in await asyncio.to_thread(self.store.attempts, self.board.rubric.id):
            self.board.add(attempt)
        self.stuck = self.board.stuck_now()
        self.tasks.append(asyncio.create_task(self._ticks()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    def subscribe(self) -> asyncio.Queue[set[str]]:
        stream: asyncio.Queue[set[str]] = asyncio.Queue(QUEUED)
        stream.put_nowait(set(self.board.places))  # the whole board first: nothing missed meanwhile
        self.streams.add(stream)
        return stream

    def subscribed(self, stream: asyncio.Queue[set[str]]) -> bool:
        return stream in self.streams

    def unsubscribe(self, stream: asyncio.Queue[set[str]]) -> None:
        self.streams.discard(stream)

    async def publish(self, attempt_ids: list[int]) -> None:
        """Stored attempts: to this process's board (and, with PostgreSQL, to the others')."""
        await self.deliver(attempt_ids)

    async def deliver(self, attempt_ids: list[int]) -> None:
        attempts = await asyncio.to_thread(self.store.attempts, ids=attempt_ids)
        self.tell(set().union(*(self.board.add(attempt) for attempt in attempts)))

    def tell(self, names: set[str]) -> None:
        if not names:
            return
        for stream in list(self.streams):
            try:
                stream.put_nowait(names)
            except asyncio.QueueFull:
                self.streams.discard(stream)  # its stream ends at its next heartbeat

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = self.board.stuck_now()
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

    async def publish(self, attempt_ids: list[int]) -> None:
        payload = ",".join(str(int(i)) for i in attempt_ids)  # a batch's: at most some 1,000 of NOTIFY's 8,000 bytes

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
                    for note in connection.notifies():
                        self._arrived([int(i) for i in note.payload.split(",")])
            except (psycopg.Error, ValueError) as exc:
                log.warning("lost the PostgreSQL notifications (%s); listening again", exc)
                self.stopped.wait(1.0)

    def _arrived(self, attempt_ids: list[int]) -> None:
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                asyncio.run_coroutine_threadsafe(self.deliver(attempt_ids), self.loop)


def fanout(store: Store, board: Board) -> Fanout:
    return PostgresFanout(store, board) if store.engine.dialect.name == "postgresql" else Fanout(store, board)
