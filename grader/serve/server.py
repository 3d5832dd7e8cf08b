"""uvicorn's server, stopped cleanly: SIGINT or SIGTERM first ends the dashboards' event
streams (they never end by themselves: uvicorn would wait out its graceful timeout, then cancel
them and print a CancelledError trace), and a stop asked for is ``grader serve``'s normal end
(exit 0), not a signal to raise again."""

from __future__ import annotations

from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from .fanout import Fanout


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, fanout: Fanout) -> None:
        super().__init__(config)
        self.fanout = fanout

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # uvicorn raises them again once stopped
        self.fanout.end_streams()
