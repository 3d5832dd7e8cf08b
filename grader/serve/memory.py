"""The server's freed memory given back to the system. A busy spell of the live class (up to
200 bundles of some 60 KB waiting for a check, 400 checked ones for a commit) leaves freed
chunks in the middle of the C heap, and glibc keeps them: in a 10-minute run at 300 students
the server's own process kept 10 MB more after each such spell, and its memory rose from 111 to
139 MB. ``malloc_trim`` gives those pages back; once a minute it costs about a millisecond, in a
thread. Where malloc is not glibc's, there is nothing to call and nothing is done."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
from collections.abc import Callable

EVERY = 60.0  # seconds between two trims


def _trim() -> Callable[[int], int] | None:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None).malloc_trim
    return None


TRIM = _trim()


def give_back() -> bool:
    """The C heap's free pages returned to the system; False where that cannot be done."""
    if TRIM is None:
        return False
    TRIM(0)
    return True


async def giving_back(every: float = EVERY) -> None:
    """``give_back`` every ``every`` seconds, until cancelled."""
    while TRIM is not None:
        await asyncio.sleep(every)
        await asyncio.to_thread(give_back)
