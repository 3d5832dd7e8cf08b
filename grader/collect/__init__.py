"""Daemon -> Snapshot. The only layer that talks to Docker.

One pass: list containers (stopped ones too), networks and images and inspect them
concurrently, while the probes the rubric asks for run. Each network's probes run as one
script, in a short-lived labelled probe container on that network, or in one exec. One
probe container serves every user-defined network (it moves from one to the next); the
default bridge and legacy links need containers of their own, which run in parallel. The
grader never changes the student's objects; every probe container carries
``grader.probe=1`` and this run's id and is removed in all cases, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import docker
import docker.errors
import docker.tls
import docker.utils
import requests.exceptions
from docker.utils.socket import consume_socket_output, frames_iter

from .. import __version__, facts
from ..errors import DaemonUnreachable
from ..probes import Origin, ProbeSpec, command_for, parse, script, split_sections, timeout_for
from ..snapshot import ProbeResult, Snapshot

PROBE_LABEL = "grader.probe"
RUN_LABEL = "grader.run"
DEFAULT_PROBE_IMAGE = "alpine"
BUILT_IN = ("bridge", "host", "none")  # networks unlike the user-defined ones
SSH_WORKERS = 3
MIN_API = "1.24"  # only for asking the daemon its API version
ENGINE_KEYS = ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "KernelVersion")
KEEP_ALIVE = 600  # seconds a probe container lives at most if the grader is killed
TIMED_OUT = (124, 143)  # exit codes of `timeout` and of a killed command
INFO_KEYS = ("Name", "ServerVersion", "Driver", "OperatingSystem", "NCPU", "MemTotal")


@dataclass(frozen=True)
class TLSFiles:
    """Client certificate, key and the CA that signed the daemon's certificate."""

    ca: str
    cert: str
    key: str


def connect(docker_host: str | None = None, timeout: float = 30, tls: TLSFiles | None = None) -> docker.DockerClient:
    """A client as the docker SDK finds the daemon (DOCKER_HOST, TLS vars) or ``docker_host``
    (``unix://``, ``tcp://`` with ``tls``, ``ssh://user@host`` through the system's ssh). The
    API version is negotiated (Docker 29 refuses clients below 1.44)."""
    if docker_host:
        # verify=True: the daemon's certificate must be signed by tls.ca (the default is not to check).
        files = {"client_cert": (tls.cert, tls.key), "ca_cert": tls.ca} if tls else {}
        tls_config = docker.tls.TLSConfig(**files, verify=True) if tls else False
        params = {"base_url": docker_host, "tls": tls_config, "use_ssh_client": docker_host.startswith("ssh://")}
    else:
        params = docker.utils.kwargs_from_env()
    try:
        # Negotiated by hand rather than with version="auto", which talks to the daemon inside
        # the constructor, before trust_env can be turned off (docker/docker-py#2433).
        asking = _client(params, MIN_API, timeout)
        try:
            version = asking.api.version(api_version=False)["ApiVersion"]
        finally:
            asking.close()
        client = _client(params, version, timeout)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, KeyError) as exc:
        where = docker_host or "the default daemon (DOCKER_HOST or /var/run/docker.sock)"
        raise lost(exc, f"cannot reach the Docker daemon at {where}") from exc
    return client


def _client(params: dict[str, Any], version: str, timeout: float) -> docker.DockerClient:
    client = docker.DockerClient(**params, version=version, timeout=timeout)
    # The daemon's own CA, no proxies: REQUESTS_CA_BUNDLE, HTTPS_PROXY and the like in the
    # environment would otherwise override the TLS files or send the traffic elsewhere.
    client.api.trust_env = False
    return client


def lost(exc: BaseException, doing: str) -> DaemonUnreachable:
    """A one-line DaemonUnreachable saying why: TLS refused, timeout, permission denied on the
    socket, or unreachable."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(c) for c in chain)
    if any(isinstance(c, ssl.SSLError) for c in chain) or "SSL" in text or "certificate" in text:
        return DaemonUnreachable(f"{doing}: TLS refused: {_one_line(exc)}", "tls")
    if any(isinstance(c, requests.exceptions.Timeout | TimeoutError | socket.timeout) for c in chain):
        return DaemonUnreachable(f"{doing}: timed out ({_one_line(exc)})", "timeout")
    if any(isinstance(c, PermissionError) for c in chain) or "PermissionError" in text:
        return DaemonUnreachable(f"{doing}: permission denied (run it as a user in the docker group, or with sudo)")
    return DaemonUnreachable(f"{doing}: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def collect(
    probes: Iterable[ProbeSpec] = (),
    *,
    docker_host: str | None = None,
    client: docker.DockerClient | None = None,
    probe_image: str = DEFAULT_PROBE_IMAGE,
    workers: int = 8,
) -> Snapshot:
    client = client or connect(docker_host)
    api = client.api
    if str(api.base_url).startswith("http+docker://ssh"):
        # Each concurrent call over ssh is a new ssh session; sshd drops new sessions at random
        # beyond 10 that are still authenticating (MaxStartups): keep well below that.
        workers = min(workers, SSH_WORKERS)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with ProbeRunner(client, probe_image) as runner:
        # Starting a probe container is the slowest step: it overlaps the inspects.
        runner.start(list(probes))
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                version = pool.submit(api.version)
                info = pool.submit(api.info)
                images = pool.submit(api.images)
                container_ids = [c["Id"] for c in api.containers(all=True)]
                network_ids = [n["Id"] for n in api.networks()]
                containers = [c for c in pool.map(lambda i: _inspect(api.inspect_container, i), container_ids) if c]
                networks = [n for n in pool.map(lambda i: _inspect(api.inspect_network, i), network_ids) if n]
                engine = {k: v for k, v in version.result().items() if k in ENGINE_KEYS}
                engine.update({k: v for k, v in info.result().items() if k in INFO_KEYS})
                image_list = [{"Id": i["Id"], "RepoTags": i.get("RepoTags") or []} for i in images.result()]
        except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
            raise lost(exc, "lost the Docker daemon while inspecting it") from exc
        timings["inspect"] = round(time.perf_counter() - started, 3)
        snapshot = Snapshot(
            grader_version=__version__,
            taken_at=datetime.now(UTC).isoformat(timespec="seconds"),
            docker_host=str(api.base_url),
            engine=engine,
            containers=sorted(containers, key=lambda c: c.get("Name", "")),
            networks=sorted(networks, key=lambda n: n.get("Name", "")),
            images=sorted(image_list, key=lambda i: i["Id"]),
        )
        runner.snapshot.set_result(snapshot)
        results = runner.results()
    timings["probes"] = round(time.perf_counter() - started, 3)  # from their start, alongside the inspects
    return snapshot.model_copy(update={"probes": results, "timings": timings}).sealed()


def _inspect(fetch: Any, ident: str) -> dict[str, Any] | None:
    """Inspect one object; one removed while we were listing is simply gone, not an error."""
    try:
        return fetch(ident)
    except docker.errors.NotFound:
        return None


class ProbeRunner:
    """Runs probe specs grouped by origin, and always cleans up (on leaving the ``with``
    block). Each origin's probes run as one script; the origins served by one probe container
    run in turn, everything else in parallel. Origins start before the snapshot is taken;
    what a probe needs from it (a target's address, a link target, the container to exec
    into) waits for ``snapshot``."""

    def __init__(self, client: docker.DockerClient, image: str):
        self.api = client.api
        self.image = image
        self.run_id = uuid.uuid4().hex[:12]
        self.cancelled = threading.Event()
        self.snapshot: Future[Snapshot] = Future()
        self.pool = ThreadPoolExecutor(max_workers=8)
        self.futures: list[Future[dict[str, ProbeResult]]] = []

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
        self.cancelled.set()
        if not self.snapshot.done():  # the snapshot failed: origins waiting for it give up
            self.snapshot.set_exception(ProbeError("cancelled"))
        if self.futures:
            self._remove_probes()  # ends any probe still waiting, then the threads finish
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.futures:
            self._remove_probes()

    def _run_exec(self, origin: Origin, specs: list[ProbeSpec]) -> dict[str, ProbeResult]:
        return self._run(origin, specs, lambda text: self._exec(origin.container, text))

    def _run_visits(self, visits: list[tuple[Origin, list[ProbeSpec]]]) -> dict[str, ProbeResult]:
        probe = ProbeContainer(self)
        results: dict[str, ProbeResult] = {}
        try:
            for origin, specs in visits:
                results.update(self._run(origin, specs, partial(probe.run, origin)))
        finally:
            probe.remove()
        return results

    def _run(self, origin: Origin, specs: list[ProbeSpec], execute: Callable[[str], str]) -> dict[str, ProbeResult]:
        """Run one origin's probes as one script through ``execute``."""
        started = time.perf_counter()
        commands: list[tuple[str, int]] = []
        runnable: list[ProbeSpec] = []
        results: dict[str, ProbeResult] = {}
        network = origin.network or "bridge"
        addresses: list[str | None] = []
        for spec in specs:
            address = None
            if spec.target is not None:
                address = facts.address_of(self.snapshot.result(), spec.target, network)
                if address is None:
                    results[spec.key] = self._result(
                        spec,
                        ok=False,
                        error=f"no running container {spec.target} on {network}",
                        data={"state": True},
                    )
                    continue
            commands.append((command_for(spec, address), timeout_for(spec)))
            runnable.append(spec)
            addresses.append(address)
        if not runnable:
            return results
        nonce = uuid.uuid4().hex
        try:
            if self.cancelled.is_set():
                raise ProbeError("cancelled")
            output = execute(script(commands, nonce))
        except ProbeError as exc:
            for spec in runnable:
                results[spec.key] = self._result(spec, ok=False, error=str(exc), data={"state": exc.state})
            return results
        elapsed = round(time.perf_counter() - started, 3)
        sections = split_sections(output, nonce, len(runnable))
        for spec, address, (rc, text) in zip(runnable, addresses, sections, strict=True):
            ok, data = parse(spec, rc, text)
            if address is not None:
                data["address"] = address
            if rc in TIMED_OUT:  # no answer in time is a fact about the daemon, not a probe failure
                data["timed_out"] = timeout_for(spec)
            results[spec.key] = self._result(spec, ok=ok, output=text[-4000:], data=data, duration=elapsed)
        return results

    def _result(self, spec: ProbeSpec, **fields: Any) -> ProbeResult:
        where = spec.origin.key
        return ProbeResult(
            key=spec.key,
            kind=spec.action,
            network=where,
            target=spec.host or str(spec.target or ""),
            **fields,
        )

    def _exec(self, selector: facts.Selector, text: str) -> str:
        running = [c for c in facts.select(self.snapshot.result(), selector) if facts.is_running(c)]
        if not running:
            raise ProbeError(f"no running container {selector} to run the command in", state=True)
        return self.exec_in(running[0]["Id"], text, f"exec in {selector}")

    def exec_in(self, ident: str, text: str, doing: str) -> str:
        """The output of ``sh -c text`` run in a running container."""
        try:
            exec_id = self.api.exec_create(ident, ["sh", "-c", text])
            sock = self.api.exec_start(exec_id, socket=True)
            try:
                frames = (data for _, data in frames_iter(sock, tty=False))
                return consume_socket_output(frames).decode(errors="replace")
            finally:
                # Over ssh the stream's ssh process may have ended first, and docker-py's close
                # then fails on flushing to it: the output is complete, that is not an error.
                with contextlib.suppress(OSError):
                    sock.close()
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise ProbeError(f"{doing} failed: {_one_line(exc)}") from exc

    def remove(self, ident: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_container(ident, force=True, v=True)

    def _remove_probes(self) -> None:
        for c in self.api.containers(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"}):
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

    def run(self, origin: Origin, text: str) -> str:
        network = origin.network or "bridge"
        if self.ident is None:
            self._start(origin, network)
        elif network != self.network:
            self._move(network)
        assert self.ident is not None
        return self.runner.exec_in(self.ident, text, f"probe on {network}")

    def _start(self, origin: Origin, network: str) -> None:
        links = {}
        for link in origin.links:
            target, _, alias = link.partition(":")
            snapshot = self.runner.snapshot.result()
            if not any(facts.is_running(c) for c in facts.select(snapshot, facts.Selector(name=target))):
                raise ProbeError(f"cannot link to {target}: no such running container", state=True)
            links[target] = alias or target
        try:
            container = self.api.create_container(
                self.runner.image,
                command=["sleep", str(KEEP_ALIVE)],
                labels={PROBE_LABEL: "1", RUN_LABEL: self.runner.run_id},
                host_config=self.api.create_host_config(network_mode=network, links=links or None),
            )
        except docker.errors.ImageNotFound as exc:
            image = self.runner.image
            raise ProbeError(
                f"probe image {image!r} is not on the daemon and the grader never pulls: "
                f"docker pull {image}, or grade with --probe-image IMAGE"
            ) from exc
        except docker.errors.NotFound as exc:  # checked by the daemon: the snapshot may not be taken yet
            raise _no_network(network) from exc
        except docker.errors.APIError as exc:
            raise ProbeError(f"cannot create a probe container on {network}: {exc.explanation or exc}") from exc
        self.ident = container["Id"]
        try:
            self.api.start(self.ident)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            self.remove()  # the next origin starts afresh
            if isinstance(exc, docker.errors.NotFound):  # some engines check the network only here
                raise _no_network(network) from exc
            raise ProbeError(f"probe on {network} failed: {_one_line(exc)}") from exc
        self.network = network

    def _move(self, network: str) -> None:
        try:
            self.api.connect_container_to_network(self.ident, network)
        except docker.errors.NotFound as exc:
            raise _no_network(network) from exc
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise ProbeError(f"cannot move the probe container to {network}: {_one_line(exc)}") from exc
        try:
            self.api.disconnect_container_from_network(self.ident, self.network)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            self.remove()  # on two networks it would answer for both: the next origin starts afresh
            raise ProbeError(f"cannot move the probe container off {self.network}: {_one_line(exc)}") from exc
        self.network = network

    def remove(self) -> None:
        if self.ident is not None:
            self.runner.remove(self.ident)
            self.ident = None


def _no_network(network: str) -> ProbeError:
    """The student's daemon has no such network (the daemon says so at create, start or connect)."""
    return ProbeError(f"network {network} does not exist", state=True)


class ProbeError(Exception):
    """A probe could not run at all. ``state`` says the student's daemon is why (a missing
    network or container: the check fails); otherwise the grader could not read the fact
    (the check is an ``error``)."""

    def __init__(self, message: str, state: bool = False):
        super().__init__(message)
        self.state = state
