"""Runs a rubric's probes on a daemon: each origin's probes as one script (``script.py``), in a
short-lived labelled probe container on the origin's network or in one exec into a student's
running container. One probe container serves every user-defined network (it moves from one to
the next); the default bridge and each set of legacy links get containers of their own, which
run in parallel. Every probe container carries ``grader.probe=1``, this run's id and its deadline;
it ends by itself at that deadline (AutoRemove) and is removed in all other cases, in the
background (``Cleanup``) as soon as its last script has run."""

from __future__ import annotations

import contextlib
import email.utils
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.utils.socket import STDOUT, frames_iter

from .. import facts
from ..i18n import Text, stored
from ..snapshot import ProbeResult, Snapshot
from ..util import one_line
from .script import (
    OUTPUT_CAP,
    READS,
    TIMED_OUT,
    Script,
    Section,
    command_for,
    output_limit,
    parse,
    script,
    split_sections,
)
from .spec import Origin, ProbeSpec, timeout_for

PROBE_LABEL = "grader.probe"
RUN_LABEL = "grader.run"
DEFAULT_PROBE_IMAGE = "alpine"
BUILT_IN = ("bridge", "host", "none")  # networks unlike the user-defined ones
# Seconds a probe container lives at most, from its creation: its deadline, an absolute time
# on the daemon's clock fixed when it is created, which its own command checks before doing
# anything (a start the daemon makes late ends at once); it exits then and the daemon removes
# it (AutoRemove), so a grader that is killed leaves nothing for long. A run's probes take a
# few seconds; one past this span gets an ``error`` (its container is gone), never a verdict.
# GRADER_PROBE_LIFE changes it (a very slow daemon; the tests' kill-and-wait cases).
PROBE_LIFE = int(os.environ.get("GRADER_PROBE_LIFE") or 60)
DEADLINE_LABEL = "grader.deadline"  # each probe container's deadline, read by the sweep of later runs
LIFE_LABEL = "grader.life"  # its life, on probe containers of graders before DEADLINE_LABEL
SWEEP_MARGIN = 10  # seconds past a probe container's deadline before a later run removes it
# The command of a probe container: it sleeps until its deadline ($1), or ends at once past it
# (whole seconds: a second less, so that it ends before the deadline, not within the second after).
UNTIL_DEADLINE = 'n=$(date +%s); [ "$n" -lt "$1" ] && exec sleep $(($1 - n - 1))'
ATTEMPTS = 4  # runs of a probe script whose output came back cut short
# Seconds an exec's stream may take past its script's own bound (the daemon starting the exec,
# the output on its way) before the exec is abandoned: its processes killed, its folder removed.
EXEC_GRACE = 5
# Seconds a wait for probe containers' removal lasts at most (``Cleanup``): the client's timeout
# for one call (what is still there then ends by itself within PROBE_LIFE).
CLEANUP_WAIT = 30


class Cleanup:
    """Probe containers being removed in the background. A forced removal costs the daemon
    0.15-0.25 s: a run hands each probe container here as soon as its last script has run, so
    that the removal overlaps evaluating, storing and showing the result. Whoever must see the
    containers gone waits (``wait``, or on leaving a ``with`` block): ``collect`` before it
    returns unless it is given one, the CLI before the process ends, a watch before it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._removals: list[threading.Event] = []  # each set once its removal ended

    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wait()

    def start(self, remove: Callable[[], None]) -> None:
        ended = threading.Event()
        with self._lock:
            self._removals = [e for e in self._removals if not e.is_set()]
            self._removals.append(ended)
        # A daemon thread: a removal the daemon never answers cannot hold the process past ``wait``.
        try:
            threading.Thread(target=_quietly, args=(remove, ended), name="probe-cleanup", daemon=True).start()
        except RuntimeError:  # no thread to be had: removed here and now
            _quietly(remove, ended)

    def wait(self, timeout: float = CLEANUP_WAIT) -> bool:
        """Wait until every removal handed here has ended, at most ``timeout`` seconds; whether
        they all ended. A signal meanwhile (``Interrupted``) does not cut the wait short: it is
        raised once the wait is over. (Events, not ``Thread.join``: a join that a signal
        interrupts takes the thread for ended.)"""
        deadline = time.monotonic() + timeout
        interrupted: KeyboardInterrupt | None = None
        pending = True
        while pending:
            try:
                with self._lock:
                    removals = list(self._removals)
                for ended in removals:
                    ended.wait(max(0.0, deadline - time.monotonic()))
                pending = False
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted
        return all(ended.is_set() for ended in removals)


class ProbeRunner:
    """Runs probe specs grouped by origin, and always cleans up: each probe container is handed
    to ``cleanup`` once its last script has run, and on leaving the ``with`` block whatever
    else carries this run's label. Each origin's probes run as one script; the origins served
    by one probe container run in turn, everything else in parallel. Origins start before the
    snapshot is taken; what a probe needs from it (a target's address, a link target, the
    container to exec into) waits for ``snapshot``."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        cleanup: Cleanup,
        cancelled: threading.Event | None = None,
    ):
        self.api = client.api
        self.cleanup = cleanup
        self.image = image
        self.run_id = uuid.uuid4().hex[:12]
        self.cancelled = cancelled or threading.Event()
        self.snapshot: Future[Snapshot] = Future()
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.futures: list[Future[dict[str, ProbeResult]]] = []
        self.clock_offset: float | None = None  # the daemon's clock minus ours, once read

    def __enter__(self) -> ProbeRunner:
        return self

    def start(self, specs: list[ProbeSpec]) -> None:
        unique = {s.key: s for s in specs}
        groups: dict[Origin, list[ProbeSpec]] = defaultdict(list)
        for spec in unique.values():
            groups[spec.origin].append(spec)
        # Starting a container costs the daemon about 0.7 CPU-seconds, switching a running one
        # to another network 0.04: one probe container visits the user-defined networks in
        # turn. Legacy links are fixed when a container is created, and a container made on
        # the default bridge has no embedded DNS (nor keeps one made elsewhere the bridge's):
        # each of those gets a container of its own.
        visits: dict[tuple[str, tuple[str, ...]], list[tuple[Origin, list[ProbeSpec]]]] = defaultdict(list)
        for origin, group in groups.items():
            if origin.container is None:
                network = origin.network or "bridge"
                visits[network if network in BUILT_IN else "", origin.links].append((origin, group))
        self.futures = [self.pool.submit(self._run_visits, v) for v in visits.values()]
        self.futures += [self.pool.submit(self._run_exec, o, g) for o, g in groups.items() if o.container is not None]

    def results(self) -> dict[str, ProbeResult]:
        results: dict[str, ProbeResult] = {}
        for future in self.futures:
            results.update(future.result())
        return dict(sorted(results.items()))

    def __exit__(self, *exc_info: object) -> None:
        # Never raises: a clean-up problem must not mask the error that ended the run, and
        # what it could not remove ends by itself within PROBE_LIFE.
        self.cancelled.set()
        if not self.snapshot.done():  # the snapshot failed: origins waiting for it give up
            self.snapshot.set_exception(ProbeError("cancelled"))
        if not all(future.done() for future in self.futures):
            self._remove_probes()  # ends any probe still waiting, then the threads finish
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.futures:  # a container whose creation never told us its id, say
            self.cleanup.start(self._remove_probes)

    def _run_exec(self, origin: Origin, specs: list[ProbeSpec]) -> dict[str, ProbeResult]:
        return self._run(origin, specs, partial(self._exec, origin.container))

    def _run_visits(self, visits: list[tuple[Origin, list[ProbeSpec]]]) -> dict[str, ProbeResult]:
        probe = ProbeContainer(self)
        results: dict[str, ProbeResult] = {}
        try:
            # Started at once, alongside the inspects: its first script waits for the snapshot
            # (the addresses it reaches), its container need not. A failure here is met again,
            # and reported, where that script runs.
            if not self.cancelled.is_set():
                with contextlib.suppress(ProbeError):
                    probe.ready(visits[0][0])
            for origin, specs in visits:
                results.update(self._run(origin, specs, partial(probe.run, origin)))
        finally:
            probe.remove()
        return results

    def _run(
        self, origin: Origin, specs: list[ProbeSpec], execute: Callable[[Script], bytes]
    ) -> dict[str, ProbeResult]:
        """Run one origin's probes as one script through ``execute(script)``."""
        started = time.perf_counter()
        commands: list[tuple[str, int]] = []
        runnable: list[ProbeSpec] = []
        results: dict[str, ProbeResult] = {}
        network = origin.network or "bridge"
        addresses: list[list[str] | None] = []
        for spec in specs:
            tried = spec.addresses_in(self.snapshot.result())
            if tried == []:
                error = (
                    Text("no running container {container} to reach", container=str(spec.target))
                    if origin.container is not None
                    else Text(
                        "no running container {container} on {network}", container=str(spec.target), network=network
                    )
                )
                results[spec.key] = self._failed(spec, ProbeError(error, state=True))
                continue
            commands.append((command_for(spec, tried), timeout_for(spec) * len(tried or [None])))
            runnable.append(spec)
            addresses.append(tried)
        if not runnable:
            return results
        # Docker 20.10 sometimes returns an exec's stream without its output although the exec
        # ran (several graders at once on one daemon): a section that is missing is run again,
        # after a pause, up to ATTEMPTS times in all, and otherwise it is no evidence at all.
        sections: list[Section | None] = [None] * len(runnable)
        for attempt in range(ATTEMPTS):
            missing = [i for i, section in enumerate(sections) if section is None]
            if not missing:
                break
            if attempt:
                time.sleep(0.2 * attempt)
            nonce = uuid.uuid4().hex
            try:
                if self.cancelled.is_set():
                    raise ProbeError("cancelled")
                output = execute(script([commands[i] for i in missing], nonce))
            except ProbeError as exc:
                for i in missing:
                    results[runnable[i].key] = self._failed(runnable[i], exc)
                return results
            for i, section in zip(missing, split_sections(output, nonce, len(missing)), strict=True):
                sections[i] = section
        elapsed = round(time.perf_counter() - started, 3)
        for spec, address, section in zip(runnable, addresses, sections, strict=True):
            if section is None:
                results[spec.key] = self._failed(
                    spec, ProbeError(Text("the probe's output was cut short, each time it ran"))
                )
                continue
            ok, data = parse(spec, section.rc, section.output)
            if address:
                data["address"] = address[0]
            if address and len(address) > 1:
                data["tried"] = address
            if section.truncated:  # what follows the kept bytes was never read
                data["truncated_at"] = OUTPUT_CAP
            if section.rc == TIMED_OUT:  # no answer in time is a fact about the daemon, not a probe failure
                data["timed_out"] = timeout_for(spec)
            error = None
            if spec.action in READS and section.rc != 0:  # what it read is no evidence
                error = f"`{command_for(spec, address)}` exited {section.rc}: {section.output.strip()[-200:]}"
            results[spec.key] = self._result(
                spec, ok=ok, output=section.output, data=data, duration=elapsed, error=error
            )
        return results

    def _failed(self, spec: ProbeSpec, exc: ProbeError) -> ProbeResult:
        """The result of a probe that could not run; a sentence of ours is kept as a template
        too (``data.said``), so that a student reads it in their language."""
        said = {"said": stored(exc.message)} if isinstance(exc.message, Text) else {}
        return self._result(spec, ok=False, error=str(exc.message), data={"state": exc.state, **said})

    def _result(self, spec: ProbeSpec, **fields: Any) -> ProbeResult:
        where = spec.origin.key
        return ProbeResult(
            key=spec.key,
            kind=spec.action,
            network=where,
            target=spec.host or str(spec.target or ""),
            **fields,
        )

    def _exec(self, selector: facts.Selector, run: Script) -> bytes:
        running = [c for c in facts.select(self.snapshot.result(), selector) if facts.is_running(c)]
        if not running:
            raise ProbeError(f"no running container {selector} to run the command in", state=True)
        return self.exec_in(running[0]["Id"], run, f"exec in {selector}")

    def exec_in(self, ident: str, run: Script, doing: str) -> bytes:
        """The standard output of ``run`` in a running container, read up to what such a
        script can print. The stream is read by a thread of its own, waited for up to the
        script's bound (plus EXEC_GRACE) and only while the run is not cancelled: past that the
        exec is abandoned (its stream shut, its processes and folder removed by another exec),
        and nothing waits for that thread."""
        try:
            exec_id = self.api.exec_create(ident, ["sh", "-c", run.text])
            sock = self.api.exec_start(exec_id, socket=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise ProbeError(f"{doing} failed: {one_line(exc)}") from exc
        read: Future[bytes] = Future()
        threading.Thread(target=_read_stdout, args=(sock, output_limit(run.count), read), daemon=True).start()
        deadline = time.monotonic() + run.seconds + EXEC_GRACE
        while True:
            try:
                return read.result(timeout=0.1)
            except FutureTimeout:
                if self.cancelled.is_set() or time.monotonic() >= deadline:
                    break
            except Exception as exc:  # noqa: BLE001 - whatever ended the stream's reading
                raise ProbeError(f"{doing} failed: {one_line(exc)}") from exc
        _abandon(sock)
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            cleanup = self.api.exec_create(ident, ["sh", "-c", run.cleanup])
            self.api.exec_start(cleanup, detach=True)
        if self.cancelled.is_set():
            raise ProbeError("cancelled")
        seconds = run.seconds + EXEC_GRACE
        raise ProbeError(Text("{doing} did not end within {seconds} s (stopped)", doing=doing, seconds=seconds))

    def deadline(self) -> int:
        """PROBE_LIFE seconds from now on the daemon's clock, in seconds since the epoch. Its
        clock is read once, from the ``Date`` of an answer (whole seconds: a deadline may come up
        to a second early); a daemon that gives none is taken to agree with ours."""
        if self.clock_offset is None:
            self.clock_offset = 0.0
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException, OSError):
                date = self.api._get(self.api._url("/_ping")).headers.get("Date")  # noqa: SLF001 - docker-py's request helpers
                if date:
                    self.clock_offset = email.utils.parsedate_to_datetime(date).timestamp() - time.time()
        return int(time.time() + self.clock_offset) + PROBE_LIFE

    def remove(self, ident: str) -> None:
        """Remove a probe container; one already gone or being removed (AutoRemove, another
        clean-up path) is fine. A daemon that fails here is left to the container's own life."""
        try:
            self.api.remove_container(ident, force=True, v=True)
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):
                raise ProbeError(f"cannot remove probe container {ident[:12]}: {one_line(exc)}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise ProbeError(f"cannot remove probe container {ident[:12]}: {one_line(exc)}") from exc

    def _remove_probes(self) -> None:
        try:
            found = self.api.containers(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"})
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return  # the daemon is gone: the containers end by themselves within PROBE_LIFE
        for c in found:
            with contextlib.suppress(ProbeError):
                self.remove(c["Id"])

    def sweep(self, daemon_now: float) -> None:
        """Remove the probe containers of earlier runs that outlived their life: a grader
        killed between creating and starting one leaves it created, never started, forever.
        Ages are read on the daemon's clock (``daemon_now``), which may differ from ours."""
        try:
            found = self.api.containers(all=True, filters={"label": f"{PROBE_LABEL}=1"})
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return
        for c in found:
            labels = c.get("Labels") or {}
            if labels.get(DEADLINE_LABEL, "").isdigit():
                deadline = int(labels[DEADLINE_LABEL])
            else:
                life = int(labels[LIFE_LABEL]) if labels.get(LIFE_LABEL, "").isdigit() else PROBE_LIFE
                deadline = c.get("Created", daemon_now) + life
            if labels.get(RUN_LABEL) != self.run_id and daemon_now > deadline + SWEEP_MARGIN:
                with contextlib.suppress(ProbeError):
                    self.remove(c["Id"])


class ProbeContainer:
    """One labelled probe container of a run, started on the network of the first origin it
    serves and moved to each next origin's network (connected to the new one before it leaves
    the old one: a container left with no network loses its DNS resolver). Each origin's script
    runs in it by exec; it only sleeps meanwhile, and is removed in the end."""

    def __init__(self, runner: ProbeRunner):
        self.runner = runner
        self.api = runner.api
        self.ident: str | None = None
        self.network = ""

    def run(self, origin: Origin, run: Script) -> bytes:
        network = self.ready(origin)
        assert self.ident is not None
        return self.runner.exec_in(self.ident, run, f"probe on {network}")

    def ready(self, origin: Origin) -> str:
        """Started on the origin's network, or moved there; that network."""
        network = origin.network or "bridge"
        if self.ident is None:
            self._start(origin, network)
        elif network != self.network:
            self._move(network)
        return network

    def _start(self, origin: Origin, network: str) -> None:
        links = {}
        for link in origin.links:
            target, _, alias = link.partition(":")
            snapshot = self.runner.snapshot.result()
            if not any(facts.is_running(c) for c in facts.select(snapshot, facts.Selector(name=target))):
                raise ProbeError(Text("cannot link to {target}: no such running container", target=target), state=True)
            links[target] = alias or target
        try:
            deadline = str(self.runner.deadline())
            container = self.api.create_container(
                self.runner.image,
                command=["sh", "-c", UNTIL_DEADLINE, "probe", deadline],
                labels={PROBE_LABEL: "1", RUN_LABEL: self.runner.run_id, DEADLINE_LABEL: deadline},
                host_config=self.api.create_host_config(network_mode=network, links=links or None, auto_remove=True),
            )
        except docker.errors.ImageNotFound as exc:
            image = self.runner.image
            message = Text(
                "probe image {quoted} is not on the daemon and the grader never pulls: "
                "docker pull {image}, or grade with --probe-image IMAGE",
                quoted=repr(image),
                image=image,
            )
            raise ProbeError(message) from exc
        except docker.errors.NotFound as exc:  # checked by the daemon: the snapshot may not be taken yet
            raise _no_network(network) from exc
        except docker.errors.APIError as exc:
            raise ProbeError(f"cannot create a probe container on {network}: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise ProbeError(f"cannot create a probe container on {network}: {one_line(exc)}") from exc
        self.ident = container["Id"]
        try:
            self.api.start(self.ident)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            self.remove()  # the next origin starts afresh
            if isinstance(exc, docker.errors.NotFound):  # some engines check the network only here
                raise _no_network(network) from exc
            raise ProbeError(f"probe on {network} failed: {one_line(exc)}") from exc
        self.network = network

    def _move(self, network: str) -> None:
        try:
            self.api.connect_container_to_network(self.ident, network)
        except docker.errors.NotFound as exc:
            raise _no_network(network) from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            raise ProbeError(f"cannot move the probe container to {network}: {one_line(exc)}") from exc
        try:
            self.api.disconnect_container_from_network(self.ident, self.network)
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            self.remove()  # on two networks it would answer for both: the next origin starts afresh
            raise ProbeError(f"cannot move the probe container off {self.network}: {one_line(exc)}") from exc
        self.network = network

    def remove(self) -> None:
        """Hand the container to the run's clean-up; the next origin, if any, starts afresh."""
        if self.ident is not None:
            ident, self.ident = self.ident, None
            self.runner.cleanup.start(partial(self.runner.remove, ident))


def _quietly(remove: Callable[[], None], ended: threading.Event) -> None:
    try:
        with contextlib.suppress(ProbeError):  # the run's label sweep tries again; or it ends by itself
            remove()
    finally:
        ended.set()


def _read_stdout(sock: Any, limit: int, read: Future[bytes]) -> None:
    """Read an exec's standard output (its other stream is dropped) into ``read``, up to
    ``limit`` bytes: a stream beyond it is cut."""
    try:
        chunks: list[bytes] = []
        size = 0
        for stream, data in frames_iter(sock, tty=False):
            if stream != STDOUT:
                continue
            chunks.append(data[: limit - size])
            size += len(chunks[-1])
            if size >= limit:
                break
        read.set_result(b"".join(chunks))
    except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
        read.set_exception(exc)
    finally:
        # Over ssh the stream's ssh process may have ended first, and docker-py's close then
        # fails on flushing to it: the output is complete, that is not an error.
        with contextlib.suppress(OSError):
            sock.close()


def _abandon(sock: Any) -> None:
    """End the read of an exec's stream from another thread: a socket is shut down (its reader
    wakes at once), an ssh stream's process ended."""
    raw = getattr(sock, "_sock", sock)
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        with contextlib.suppress(Exception):
            sock.close()


def _no_network(network: str) -> ProbeError:
    """The student's daemon has no such network (the daemon says so at create, start or connect)."""
    return ProbeError(Text("network {network} does not exist", network=network), state=True)


class ProbeError(Exception):
    """A probe could not run at all. ``state`` says the student's daemon is why (a missing
    network or container: the check fails); otherwise the grader could not read the fact
    (the check is an ``error``)."""

    def __init__(self, message: str, state: bool = False):
        super().__init__(message)
        self.message = message  # a Text when the sentence is ours (never one quoting Docker's words)
        self.state = state
