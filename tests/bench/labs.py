"""The two labs of shared/LABS.md, played with the students' own commands.

Each lab is a list of steps; each step is the docker CLI commands of that step, run
against a bench daemon. ``play(daemon, LAB, upto=N)`` plays steps 1..N (the step-by-step
sequence); ``play(daemon, LAB)`` plays the whole lab, final step included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .daemon import BenchDaemon

APP = "katacoda/redis-node-docker-example"


def http_get(daemon: BenchDaemon, port: int = 3000) -> str:
    """``curl docker:3000``: the published port, from the daemon's own host (its namespace)."""
    code = (
        "import urllib.request,sys;"
        f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=5).read().decode())"
    )
    return daemon.nsenter("python3", "-c", code).stdout


@dataclass(frozen=True)
class Step:
    title: str
    play: Callable[[BenchDaemon], list[str]]


def _run(daemon: BenchDaemon, *args: str, input: str | None = None) -> str:
    return daemon.docker(*args, input=input).stdout


LINKS_LAB: list[Step] = [
    Step("data store", lambda d: [_run(d, "run", "-d", "--name", "redis-server", "redis")]),
    Step("link a container", lambda d: [_run(d, "run", "--link", "redis-server:redis", "alpine", "env")]),
    Step("hosts file", lambda d: [_run(d, "run", "--link", "redis-server:redis", "alpine", "cat", "/etc/hosts")]),
    Step("ping", lambda d: [_run(d, "run", "--link", "redis-server:redis", "alpine", "ping", "-c", "1", "redis")]),
    Step(
        "connect an app",
        lambda d: [_run(d, "run", "-d", "-p", "3000:3000", "--link", "redis-server:redis", APP)],
    ),
    Step("use the app", lambda d: [_wait_http(d), http_get(d)]),
    Step(
        "redis CLI",
        lambda d: [
            _run(d, "run", "-i", "--link", "redis-server:redis", "redis", "redis-cli", "-h", "redis", input="info\nQUIT\n")
        ],
    ),
]

NETWORKS_LAB: list[Step] = [
    Step("create a network", lambda d: [_run(d, "network", "create", "backend-network")]),
    Step("attach redis", lambda d: [_run(d, "run", "-d", "--name=redis", "--net=backend-network", "redis")]),
    Step(
        "no env, no hosts entries",
        lambda d: [
            _run(d, "run", "--net=backend-network", "alpine", "env"),
            _run(d, "run", "--net=backend-network", "alpine", "cat", "/etc/hosts"),
        ],
    ),
    Step("embedded DNS", lambda d: [_run(d, "run", "--net=backend-network", "alpine", "cat", "/etc/resolv.conf")]),
    Step("name resolution", lambda d: [_run(d, "run", "--net=backend-network", "alpine", "ping", "-c1", "redis")]),
    Step(
        "second network",
        lambda d: [
            _run(d, "network", "create", "frontend-network"),
            _run(d, "network", "connect", "frontend-network", "redis"),
            _run(d, "run", "-d", "-p", "3000:3000", "--net=frontend-network", APP),
            _wait_http(d),
            http_get(d),
        ],
    ),
    Step(
        "alias",
        lambda d: [
            _run(d, "network", "create", "frontend-network2"),
            _run(d, "network", "connect", "--alias", "db", "frontend-network2", "redis"),
            _run(d, "run", "--net=frontend-network2", "alpine", "ping", "-c1", "db"),
        ],
    ),
    Step("explore", lambda d: [_run(d, "network", "ls"), _run(d, "network", "inspect", "frontend-network")]),
    Step("disconnect", lambda d: [_run(d, "network", "disconnect", "frontend-network", "redis")]),
]

LABS = {"docker-links": LINKS_LAB, "docker-networks": NETWORKS_LAB}


def _wait_http(daemon: BenchDaemon, tries: int = 50) -> str:
    """The app needs a moment to listen; students simply retry curl."""
    for _ in range(tries):
        probe = daemon.nsenter("python3", "-c", "import socket;socket.create_connection(('127.0.0.1',3000),1)", check=False)
        if probe.returncode == 0:
            return ""
        time.sleep(0.1)
    raise RuntimeError("the app never listened on :3000")


def play(daemon: BenchDaemon, lab: list[Step], upto: int | None = None) -> list[str]:
    """Play steps 1..upto (all by default); returns every command's output, in order."""
    outputs: list[str] = []
    for step in lab[: upto if upto is not None else len(lab)]:
        outputs.extend(step.play(daemon))
    return outputs
