"""``grader check --watch``: follow a daemon's events and grade again when they settle.

A thread reads the daemon's event stream (containers and networks). A container the student
creates or starts is inspected at once and kept, so a ``docker run --rm`` step still counts
once the container is gone (``Snapshot.ephemeral``); every event is kept for the timeline
(``Snapshot.timeline``: the daemon itself remembers only its last 256). The grader's own
probe containers and what they do are left out, so grading never triggers grading.

The main thread waits until the events settle (``SETTLE`` seconds without one, at most
``SETTLE_MAX`` after the first), then grades again: the daemon is inspected and only the
probes whose network changed run again (``collect(previous=...)``). An attempt is stored
when the result changed. Ctrl-C or SIGTERM ends it; the probe containers are removed (each
grade's while its result is shown, and the watch waits for them as it ends).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests.exceptions

from .collect import collect, connect, lost
from .errors import StoreError
from .evaluate import evaluate
from .grading import Graded
from .probe.runner import DEFAULT_PROBE_IMAGE, PROBE_LABEL, Cleanup
from .rubric import load
from .snapshot import Snapshot
from .standing import Mode, with_progress

SETTLE = 0.03  # seconds without an event before grading again: one command's events come within it
SETTLE_MAX = 1.0  # a stream of events (a script) still gets a grade this often
TIMELINE_MAX = 5000  # events kept for the timeline of one watch
WATCHED = {
    "container": {"create", "start", "die", "destroy", "rename"},
    "network": {"create", "destroy", "connect", "disconnect"},
}


@dataclass
class Seen:
    """What the event thread learnt: containers inspected as they appeared, the timeline, and
    whether anything changed since the last grade."""

    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    probes: set[str] = field(default_factory=set)  # ids of probe containers (anyone's)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Watch:
    """One watch of one daemon. ``show(graded, note, pending)`` is called with every new result:
    ``note`` says what happened last, ``pending`` how many probes are still running for it (the
    checks that read them show their earlier result meanwhile)."""

    def __init__(
        self,
        rubric_ref: str,
        *,
        student: str,
        show: Callable[[Graded, str, int], None],
        docker_host: str | None = None,
        db_url: str | None = None,
        probe_image: str = DEFAULT_PROBE_IMAGE,
        mode: Mode | None = None,
        insecure_tcp: bool = False,
        store: bool = True,
    ):
        self.rubric = load(rubric_ref)
        self.student, self.show, self.probe_image = student, show, probe_image
        self.mode = mode or self.rubric.mode
        self.client = connect(docker_host, insecure_tcp=insecure_tcp)
        self.db_url, self.keep = db_url, store
        self.seen = Seen()
        self.changes: queue.Queue[None] = queue.Queue()
        self.stopped = threading.Event()
        self.stream: Any = None
        self.last: Snapshot | None = None
        self.stored_outcome: Any = None
        self.store_error: str | None = None
        self.cleanup = Cleanup()  # each grade's probe containers, removed while its result is shown

    # -- the event thread -----------------------------------------------------------------

    def _follow(self) -> None:
        try:
            for event in self.stream:
                self._take(event)
        except (requests.exceptions.RequestException, docker.errors.DockerException, OSError, ValueError):
            pass  # closed on the way out, or the daemon went away: the main loop finds out
        finally:
            self.changes.put(None)

    def _take(self, event: dict[str, Any]) -> None:
        kind, action = event.get("Type"), str(event.get("Action") or "").split(":", 1)[0]
        if action not in WATCHED.get(str(kind), ()):
            return
        actor = event.get("Actor") or {}
        ident, attributes = str(actor.get("ID") or ""), actor.get("Attributes") or {}
        if kind == "container" and attributes.get(PROBE_LABEL) == "1":
            self.seen.probes.add(ident)
            return
        if kind == "network" and attributes.get("container") in self.seen.probes:
            return  # a probe container joining or leaving a student's network
        name = attributes.get("name", ident[:12])
        if kind == "container":
            self._remember(ident, action, attributes)
        elif attributes.get("container"):
            name = f"{name} {self.seen.containers.get(attributes['container'], {}).get('Name', '')}".strip()
        moment = event.get("timeNano") or int(event.get("time") or time.time()) * 10**9
        entry = {
            "time": datetime.fromtimestamp(int(moment) / 1e9, UTC).isoformat(timespec="milliseconds"),
            "type": kind,
            "action": action,
            "name": str(name)[:200],
        }
        with self.seen.lock:
            self.seen.timeline.append(entry)
            del self.seen.timeline[:-TIMELINE_MAX]
        self.changes.put(None)

    def _remember(self, ident: str, action: str, attributes: dict[str, Any]) -> None:
        """Inspect a container as it is created or started (a ``--rm`` one is gone within a
        second); keep its exit code when it dies."""
        if action in ("create", "start", "rename"):
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                found = self.client.api.inspect_container(ident)
                with self.seen.lock:
                    self.seen.containers[ident] = found
        elif action == "die" and ident in self.seen.containers:
            with self.seen.lock:
                state = dict(self.seen.containers[ident].get("State") or {})
                code = attributes.get("exitCode")
                state.update(Status="exited", Running=False)
                if str(code).isdigit():
                    state["ExitCode"] = int(code)
                self.seen.containers[ident] = {**self.seen.containers[ident], "State": state}

    # -- the main loop --------------------------------------------------------------------

    def run(self) -> None:
        """Grade now, then each time the events settle, until interrupted."""
        self.stream = self.client.api.events(decode=True, filters={"type": list(WATCHED)})
        follower = threading.Thread(target=self._follow, name="events", daemon=True)
        follower.start()
        try:
            self._grade("")
            while True:
                self.changes.get()
                if self.stopped.is_set():
                    return
                if not follower.is_alive():
                    raise lost(ConnectionError("the event stream ended"), "lost the Docker daemon while watching it")
                self._settle()
                self._grade(self._note())
        finally:
            self.stopped.set()
            with contextlib.suppress(Exception):
                self.stream.close()
            try:
                self.cleanup.wait()  # before the client it removes them with is closed
            finally:
                self.client.close()

    def _settle(self) -> None:
        deadline = time.monotonic() + SETTLE_MAX
        while time.monotonic() < deadline:
            try:
                self.changes.get(timeout=SETTLE)
            except queue.Empty:
                return

    def _note(self) -> str:
        with self.seen.lock:
            last = self.seen.timeline[-1] if self.seen.timeline else None
        return f"{last['type']} {last['action']}: {last['name']}" if last else ""

    def _grade(self, note: str) -> None:
        """Grade again: what the inspection shows at once (probes that must run again keep
        their earlier results meanwhile), then the whole result once they ran. What the event
        thread saw is taken as the inspection starts: what it sees later is the next grade's (a
        container made meanwhile is not gone, an event then is not in this grade's timeline)."""
        with self.seen.lock:
            seen = Seen(dict(self.seen.containers), list(self.seen.timeline))
        snapshot = collect(
            self.rubric.probes(),
            client=self.client,
            probe_image=self.probe_image,
            previous=self.last,
            watched=True,
            cleanup=self.cleanup,
            inspected=lambda early: self.show(self._graded(early, seen, sealed=False), note, self._pending(early)),
        )
        self.last = snapshot
        graded = self._graded(snapshot, seen)
        if self.keep:
            self._store(graded)
        self.show(graded, note, 0)

    def _pending(self, early: Snapshot) -> int:
        specs = {spec.key for spec in self.rubric.probes()}
        return len(specs) - int(early.timings.get("probes_kept", 0))

    def _graded(self, snapshot: Snapshot, seen: Seen, sealed: bool = True) -> Graded:
        """The grade of ``snapshot`` with what the event thread had ``seen``; a provisional one
        (shown while probes run, never stored) is not ``sealed``: its digest is not worth the wait."""
        present = {c.get("Id") for c in snapshot.containers}
        gone = [c for ident, c in seen.containers.items() if ident not in present]
        snapshot = snapshot.model_copy(update={"ephemeral": gone, "timeline": seen.timeline})
        snapshot = snapshot.sealed() if sealed else snapshot
        outcome = evaluate(self.rubric, snapshot)
        return Graded(self.student, self.rubric, snapshot, outcome, snapshot.taken_at)

    def _store(self, graded: Graded) -> None:
        """Store the attempt when the result changed; in progress mode, credit kept from the
        watch's earlier attempts (and the student's before it) is shown."""
        from .store import Store

        changed = [(c.id, c.status) for c in graded.outcome.checks] != self.stored_outcome
        try:
            db = Store(self.db_url)
            if changed:
                graded.attempt_id = db.record(graded.student, self.rubric, graded.snapshot, graded.outcome, "watch")
                self.stored_outcome = [(c.id, c.status) for c in graded.outcome.checks]
            if self.mode == "progress":
                checks = with_progress(graded.outcome.checks, db.attempts(self.rubric.id, graded.student))
                graded.outcome = graded.outcome.model_copy(update={"checks": checks})
            self.store_error = None
        except StoreError as exc:  # shown with the checklist; the watch goes on
            self.store_error = graded.store_error = str(exc)


@contextlib.contextmanager
def watching(watch: Watch) -> Iterator[None]:
    """For tests and benchmarks: run ``watch`` in a thread until the block ends."""
    thread = threading.Thread(target=watch.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        watch.stopped.set()
        watch.changes.put(None)
        thread.join(timeout=30)
