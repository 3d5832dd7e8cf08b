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
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import docker.tls
import docker.utils
import requests.exceptions

from .. import __version__
from ..errors import DaemonUnreachable, UsageError
from ..probe.runner import DEFAULT_PROBE_IMAGE, Cleanup, ProbeRunner
from ..probe.spec import ProbeSpec
from ..snapshot import ProbeResult, Snapshot
from ..util import one_line

SSH_WORKERS = 3
MIN_API = "1.24"  # only for asking the daemon its API version
ENGINE_KEYS = ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "KernelVersion")
# ID: the engine's own, which tells when two students' attempts came from one daemon.
INFO_KEYS = ("ID", "Name", "ServerVersion", "Driver", "OperatingSystem", "NCPU", "MemTotal")


@dataclass(frozen=True)
class TLSFiles:
    """Client certificate, key and the CA that signed the daemon's certificate."""

    ca: str
    cert: str
    key: str


SCHEMES = ("unix://", "tcp://", "ssh://")
LOCAL_DAEMON = "unix:///var/run/docker.sock"  # only when no URL is given at all


def check_host(docker_host: str, tls: bool, insecure_tcp: bool = False) -> None:
    """Refuse (UsageError) a daemon URL that is malformed, and a ``tcp://`` one without TLS
    unless ``insecure_tcp``: plain TCP to a Docker daemon gives anyone on the way root on it."""
    if not docker_host.startswith(SCHEMES):
        raise UsageError(f"docker host {docker_host!r} must start with {', '.join(SCHEMES)}")
    try:
        url = urllib.parse.urlsplit(docker_host)
        url.port  # noqa: B018 - parsing the port is the check (out of range, not a number)
    except ValueError as exc:
        raise UsageError(f"docker host {docker_host!r} is malformed: {exc}") from None
    if url.scheme != "unix" and not url.hostname:
        raise UsageError(f"docker host {docker_host!r} names no host")
    # The docker SDK reads a unix:// URL without a path (spaces count as none) as the local
    # daemon's socket, and unix://PATH as the relative path PATH: either is a daemon nobody named.
    if url.scheme == "unix" and (url.netloc or not url.path.strip().strip("/")):
        raise UsageError(f"docker host {docker_host!r} names no socket path: write unix:///ABSOLUTE/PATH")
    if url.scheme == "tcp" and not tls and not insecure_tcp:
        raise UsageError(
            f"docker host {docker_host} without TLS: plain TCP gives anyone on the network root on that "
            "daemon; give TLS files (DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=DIR, or --tls-*), or --insecure-tcp"
        )


def connect(
    docker_host: str | None = None, timeout: float = 30, tls: TLSFiles | None = None, insecure_tcp: bool = False
) -> docker.DockerClient:
    """A client as the docker SDK finds the daemon (DOCKER_HOST, TLS vars) or ``docker_host``
    (``unix://``, ``tcp://`` with ``tls`` or the TLS variables, ``ssh://user@host`` through the
    system's ssh). The API version is negotiated (Docker 29 refuses clients below 1.44)."""
    try:
        from_env = docker.utils.kwargs_from_env()
    except docker.errors.DockerException as exc:  # DOCKER_CERT_PATH without its files, say
        raise UsageError(f"the DOCKER_* variables do not work: {one_line(exc)}") from None
    if docker_host is not None:  # given, even empty: refused below, never the default daemon
        # verify=True: the daemon's certificate must be signed by tls.ca (the default is not to check).
        files = {"client_cert": (tls.cert, tls.key), "ca_cert": tls.ca} if tls else {}
        tls_config = docker.tls.TLSConfig(**files, verify=True) if tls else from_env.get("tls", False)
        params = {"base_url": docker_host, "tls": tls_config, "use_ssh_client": docker_host.startswith("ssh://")}
    else:
        params = {"base_url": LOCAL_DAEMON, **from_env}
    check_host(params["base_url"], bool(params.get("tls")), insecure_tcp)
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
        return DaemonUnreachable(f"{doing}: TLS refused: {one_line(exc)}", "tls")
    if any(isinstance(c, requests.exceptions.Timeout | TimeoutError | socket.timeout) for c in chain):
        return DaemonUnreachable(f"{doing}: timed out ({one_line(exc)})", "timeout")
    if any(isinstance(c, PermissionError) for c in chain) or "PermissionError" in text:
        return DaemonUnreachable(f"{doing}: permission denied (run it as a user in the docker group, or with sudo)")
    return DaemonUnreachable(f"{doing}: {one_line(exc)}")


def collect(
    probes: Iterable[ProbeSpec] = (),
    *,
    docker_host: str | None = None,
    client: docker.DockerClient | None = None,
    probe_image: str = DEFAULT_PROBE_IMAGE,
    workers: int = 8,
    insecure_tcp: bool = False,
    cancel: threading.Event | None = None,
    previous: Snapshot | None = None,
    inspected: Callable[[Snapshot], None] | None = None,
    watched: bool = False,
    cleanup: Cleanup | None = None,
) -> Snapshot:
    """One pass over the daemon. ``cancel``, once set, starts no further probe (the run's
    probe containers are still removed at the end). A watcher's pass (``watched``) keeps each
    probe's fingerprint with its result (what the probe depends on; other runs never compare
    them). With ``previous`` (a watcher's last snapshot), a probe whose fingerprint did not
    change keeps its earlier result (unless the grader failed to read it); the others run once
    the daemon is inspected, and meanwhile ``inspected`` gets the snapshot with their earlier
    results, to show what changed at once. It returns with the run's probe containers removed,
    unless it is given a ``cleanup``: they are then still being removed, and waiting for them
    (``cleanup.wait()``) is the caller's."""
    specs = list(probes)
    client = client or connect(docker_host, insecure_tcp=insecure_tcp)
    api = client.api
    if str(api.base_url).startswith("http+docker://ssh"):
        # Each concurrent call over ssh is a new ssh session; sshd drops new sessions at random
        # beyond 10 that are still authenticating (MaxStartups): keep well below that.
        workers = min(workers, SSH_WORKERS)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    waited_here = Cleanup() if cleanup is None else contextlib.nullcontext(cleanup)
    with waited_here as cleanup, ProbeRunner(client, probe_image, cleanup, cancel) as runner:
        if previous is None:  # starting a probe container is the slowest step: it overlaps the inspects
            runner.start(specs)
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                # A watcher's later passes keep the engine's facts (its event stream ends when the
                # daemon restarts): ``info`` is the slowest call, and earlier runs' leftovers
                # were swept on the first pass.
                asked = None if previous is not None else (pool.submit(api.version), pool.submit(api.info))
                images = pool.submit(api.images)
                network_list = pool.submit(api.networks)
                container_ids = [c["Id"] for c in api.containers(all=True)]
                network_ids = [n["Id"] for n in network_list.result()]
                inspecting = pool.map(lambda i: _inspect(api.inspect_container, i), container_ids)
                networks = [n for n in pool.map(lambda i: _inspect(api.inspect_network, i), network_ids) if n]
                containers = [c for c in inspecting if c]
                engine = dict(previous.engine) if previous is not None else {}
                if asked is not None:
                    version, info = (call.result() for call in asked)
                    engine = {k: v for k, v in version.items() if k in ENGINE_KEYS}
                    engine.update({k: v for k, v in info.items() if k in INFO_KEYS})
                    # The version this client spoke (ApiVersion is the daemon's highest): the shape
                    # of the inspect JSON above follows it, e.g. Aliases with the short id below 1.45.
                    engine["NegotiatedApiVersion"] = api.api_version
                    # Alongside the probes, not before the snapshot they wait for.
                    runner.pool.submit(runner.sweep, _daemon_time(info))
                image_list = [{"Id": i["Id"], "RepoTags": i.get("RepoTags") or []} for i in images.result()]
        except (requests.exceptions.RequestException, docker.errors.DockerException, OSError) as exc:
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
        kept: dict[str, ProbeResult] = {}
        # Each walks every container: computed once per probe, and only for a watcher.
        fingerprints = {s.key: s.fingerprint(snapshot) for s in specs} if watched or previous is not None else {}
        if previous is not None:
            for spec in specs:
                earlier = spec.result_in(previous)
                if earlier is None or (earlier.error and not earlier.data.get("state")):
                    continue  # never read: it runs again
                # Compared with the state the result was taken in: a container that came and
                # went in between (`docker run --rm`) changes nothing.
                then = earlier.data.get("fingerprint") or spec.fingerprint(previous)
                if then == fingerprints[spec.key]:
                    kept[spec.key] = earlier
            runner.start([spec for spec in specs if spec.key not in kept])
            timings["probes_kept"] = len(kept)
            if inspected is not None:
                early = {"probes": {**previous.probes, **kept}, "timings": dict(timings)}
                inspected(snapshot.model_copy(update=early))
        runner.snapshot.set_result(snapshot)
        results = runner.results()
        for key, fingerprint in fingerprints.items():
            if key in results:
                results[key].data["fingerprint"] = fingerprint
        results.update(kept)
    timings["probes"] = round(time.perf_counter() - started, 3)  # from their start, alongside the inspects
    return snapshot.model_copy(update={"probes": results, "timings": timings}).sealed()


def _daemon_time(info: dict[str, Any]) -> float:
    """The daemon's clock (``docker info`` SystemTime, RFC 3339 with nanoseconds), else ours."""
    text = str(info.get("SystemTime") or "")
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if match is None:
        return time.time()
    return datetime.fromisoformat(match.group(1) + (match.group(2) or "Z").replace("Z", "+00:00")).timestamp()


def _inspect(fetch: Any, ident: str) -> dict[str, Any] | None:
    """Inspect one object; one removed while we were listing is simply gone, not an error."""
    try:
        return fetch(ident)
    except docker.errors.NotFound:
        return None
