"""A student's results on their way to the instructor's ``grader serve`` (``check --server``).

Every result to send is first written, sealed (``bundle.sealed``), as one file of a queue in the
user's data folder (``~/.local/share/grader/outbox/``, one folder per server and student), named
by the time it was queued; the queue is then sent oldest first, and a file is removed once the
server answered it (stored, skipped as already there, or refused). A send that fails (no
network, the server down or busy) leaves it and the ones after it queued: they are sent, in
order, at the next try, also by a later run after the laptop restarted. Nothing is lost and,
as the server skips a snapshot it has, nothing is stored twice.

Plain ``http://`` is only for the loopback (a test, an SSH tunnel) unless ``insecure_http``:
a bundle carries the student's whole daemon state."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .errors import UsageError

if TYPE_CHECKING:
    from .grading import Graded

API = "/api/v1/submissions"
TIMEOUT = 10.0  # seconds a send may take
BACKOFF = (0.5, 1, 2, 4, 8, 15, 30)  # seconds between tries while the server does not answer
RETRY = {429, 502, 503, 504}  # answers that mean "later", not "no"


def server_url(url: str, insecure_http: bool = False) -> str:
    """``url`` without a trailing slash, or a UsageError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server is an https:// URL of grader serve, not {url[:80]!r}")
    if parts.scheme == "http" and not insecure_http and not _loopback(parts.hostname):
        raise UsageError(
            "--server over plain http:// is only for this machine (localhost): a bundle holds your whole "
            "daemon's state; use https://, or --insecure-http on a network you trust"
        )
    return url.strip().rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class State:
    """What the checklist's last line says about the server."""

    sent: int = 0
    queued: int = 0
    refused: str = ""  # the server's one line, for the last bundle it refused
    failed: str = ""  # why the queue is waiting

    def line(self) -> str:
        if self.refused:
            return f"server: refused: {self.refused}"
        if self.queued:
            return f"server: queued {self.queued} ({self.failed or 'waiting'}); sent again when it answers"
        return "server: sent" if self.sent else "server: nothing to send"


class Outbox:
    def __init__(
        self,
        server: str,
        student: str,
        key: str,
        *,
        ca: Path | None = None,
        insecure_http: bool = False,
        folder: Path | None = None,
    ):
        self.server, self.student, self.key = server_url(server, insecure_http), student, key
        self.ca = ca
        self.folder = folder or _outbox_folder(self.server, student)
        self.state = State(queued=len(self.waiting()))
        self.lock = threading.Lock()  # one sender at a time: the queue's order is kept
        self._client: Any = None

    def put(self, graded: Graded) -> Path:
        """Queue ``graded`` (sealed with the student's key) to be sent."""
        from .bundle import encoded, sealed

        data = encoded(sealed(graded, self.key), packed=True)
        path = self.folder / f"{time.time_ns():020d}.json.gz"
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        os.replace(partial, path)  # a file in the queue is whole: a crash leaves only a .part
        return path

    def waiting(self) -> list[Path]:
        return sorted(self.folder.glob("*.json.gz"))

    def flush(self) -> State:
        """Send what is queued, oldest first, until the queue is empty or a send fails."""
        with self.lock:
            sent, refused, failed = 0, self.state.refused, ""
            for path in self.waiting():
                try:
                    status, why = self._send(path.read_bytes())
                except OSError as exc:  # the network, the TLS handshake, a timeout
                    failed = _why(exc)
                    break
                if status in RETRY:
                    failed = why
                    break
                path.unlink(missing_ok=True)
                if status == 200:
                    sent, refused = sent + 1, ""
                else:
                    refused = why
            self.state = State(self.state.sent + sent, len(self.waiting()), refused, failed)
            return self.state

    def deliver(self, tries: int = 3) -> State:
        """``flush``, tried again ``tries`` times with a pause while the server does not answer."""
        state = self.flush()
        for pause in BACKOFF[: tries - 1]:
            if not state.queued:
                break
            time.sleep(pause)
            state = self.flush()
        return state

    def _send(self, data: bytes) -> tuple[int, str]:
        import httpx

        if self._client is None:
            verify: Any = True
            if self.ca is not None:
                import ssl

                verify = ssl.create_default_context(cafile=str(self.ca))
            self._client = httpx.Client(timeout=TIMEOUT, verify=verify)
        headers = {
            "X-Grader-Student": quote(self.student, safe=""),
            "Content-Type": "application/gzip",
            "User-Agent": "grader",
        }
        try:
            response = self._client.post(self.server + API, content=data, headers=headers)
        except httpx.HTTPError as exc:
            raise OSError(f"cannot reach {self.server}: {exc or type(exc).__name__}") from exc
        try:
            why = str(response.json().get("why", ""))[:300]
        except ValueError:
            why = f"HTTP {response.status_code}"
        return response.status_code, why or f"HTTP {response.status_code}"


def _why(exc: OSError) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _outbox_folder(server: str, student: str) -> Path:
    from platformdirs import user_data_path

    name = hashlib.sha256(f"{server}\0{student}".encode()).hexdigest()[:16]
    folder = user_data_path("grader", appauthor=False) / "outbox" / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make the folder of your outbox {folder}: {exc.strerror or exc}") from None
    return folder


class Sender:
    """``check --watch --server``: queues each changed result and sends in a thread, trying
    again with a growing pause while the server does not answer. ``changed()`` is called when
    the state to show changed."""

    def __init__(self, outbox: Outbox, changed: Any = None):
        self.outbox, self.changed = outbox, changed
        self.last: list[tuple[str, str]] | None = None
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self.thread.start()

    def offer(self, graded: Graded) -> None:
        """Queue ``graded`` if its checks' statuses changed since the last one queued. A watch's
        provisional view (shown before its snapshot is sealed) is left for the sealed one."""
        if not graded.snapshot.verify():
            return
        statuses = [(c.id, c.status) for c in graded.outcome.checks]
        if statuses == self.last:
            return
        self.last = statuses
        self.outbox.put(graded)
        self.wake.set()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.thread.join(timeout=TIMEOUT + 1)

    def _run(self) -> None:
        tries = 0
        while not self.stopped.is_set():
            before = self.outbox.state
            state = self.outbox.flush()
            if state != before and self.changed is not None:
                self.changed()
            pause = BACKOFF[min(tries, len(BACKOFF) - 1)] if state.queued else None
            tries = tries + 1 if state.queued else 0
            self.wake.wait(pause)
            self.wake.clear()
