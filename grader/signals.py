"""SIGINT, SIGTERM and SIGHUP end a run as Ctrl-C does: each raises ``Interrupted`` (a
KeyboardInterrupt) in the main thread, so that every ``finally`` and ``with`` on the way out
runs (probe containers are removed). Entered once, around a command (``handled``)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP: each ends a run as Ctrl-C does, probe containers removed on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def handled() -> Iterator[None]:
    """The block runs with the signals raising ``Interrupted``; the handlers it found are put
    back when it ends. Outside the main thread (signals reach only that one) it changes nothing."""
    before = {}
    if threading.current_thread() is threading.main_thread():
        before = {each: signal.signal(each, _interrupt) for each in HANDLED}
        before[signal.SIGALRM] = signal.signal(signal.SIGALRM, _again)
        sys.unraisablehook = _unraisable
    try:
        yield
    finally:
        for each, handler in before.items():
            signal.signal(each, handler)
        sys.unraisablehook = sys.__unraisablehook__


def _interrupt(signum: int, _frame: Any) -> None:
    # Once: a second signal must not cut the clean-up short (what it cannot remove ends by
    # itself within the probe containers' life).
    for each in HANDLED:
        signal.signal(each, signal.SIG_IGN)
    raise Interrupted(signum)


def _unraisable(unraisable: Any) -> None:
    """A signal that arrived while a finalizer ran had its Interrupted swallowed there (Python
    only reports an exception a finalizer raises): raise it again a moment later, outside."""
    if isinstance(unraisable.exc_value, Interrupted):
        _swallowed.append(unraisable.exc_value.signum)
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        return
    sys.__unraisablehook__(unraisable)


def _again(_signum: int, _frame: Any) -> None:
    if _swallowed:
        raise Interrupted(_swallowed.pop())


_swallowed: list[int] = []
