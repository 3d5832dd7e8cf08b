"""The two labs of docs/labs.md, played with the students' own commands.

A lab is a list of steps; a step is the commands a student types, kept as data so that a
test can replay a lab with a typical mistake (``rewrite``). A command is the docker CLI's
arguments, or ``("curl", PORT)`` for ``curl docker:PORT``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .daemon import BenchDaemon

APP = "katacoda/redis-node-docker-example"
Command = tuple[str, ...]


@dataclass(frozen=True)
class Step:
    title: str
    commands: tuple[Command, ...]
    stdin: str | None = None


LINKS_LAB: list[Step] = [
    Step("data store", (("run", "-d", "--name", "redis-server", "redis"),)),
    Step("link a container", (("run", "--link", "redis-server:redis", "alpine", "env"),)),
    Step("hosts file", (("run", "--link", "redis-server:redis", "alpine", "cat", "/etc/hosts"),)),
    Step("ping", (("run", "--link", "redis-server:redis", "alpine", "ping", "-c", "1", "redis"),)),
    Step("connect an app", (("run", "-d", "-p", "3000:3000", "--link", "redis-server:redis", APP),)),
    Step("use the app", (("curl", "3000"),)),
    Step(
        "redis CLI",
        (("run", "-i", "--link", "redis-server:redis", "redis", "redis-cli", "-h", "redis"),),
        stdin="info\nQUIT\n",
    ),
]

NETWORKS_LAB: list[Step] = [
    Step("create a network", (("network", "create", "backend-network"),)),
    Step("attach redis", (("run", "-d", "--name=redis", "--net=backend-network", "redis"),)),
    Step(
        "no env, no hosts entries",
        (
            ("run", "--net=backend-network", "alpine", "env"),
            ("run", "--net=backend-network", "alpine", "cat", "/etc/hosts"),
        ),
    ),
    Step("embedded DNS", (("run", "--net=backend-network", "alpine", "cat", "/etc/resolv.conf"),)),
    Step("name resolution", (("run", "--net=backend-network", "alpine", "ping", "-c1", "redis"),)),
    Step(
        "second network",
        (
            ("network", "create", "frontend-network"),
            ("network", "connect", "frontend-network", "redis"),
            ("run", "-d", "-p", "3000:3000", "--net=frontend-network", APP),
            ("curl", "3000"),
        ),
    ),
    Step(
        "alias",
        (
            ("network", "create", "frontend-network2"),
            ("network", "connect", "--alias", "db", "frontend-network2", "redis"),
            ("run", "--net=frontend-network2", "alpine", "ping", "-c1", "db"),
        ),
    ),
    Step("explore", (("network", "ls"), ("network", "inspect", "frontend-network"))),
    Step("disconnect", (("network", "disconnect", "frontend-network", "redis"),)),
]

LABS = {"docker-links": LINKS_LAB, "docker-networks": NETWORKS_LAB}

# A rewrite turns one command into what a student typed instead (None: they skipped it).
Rewrite = Callable[[Command], Command | None]


def http_get(daemon: BenchDaemon, port: int = 3000) -> str:
    """``curl docker:PORT``: the published port, from the daemon's own host (its namespace).
    Returns the body, also of an error answer; waits a moment for the app to listen."""
    code = (
        "import sys,time,urllib.request as u,urllib.error as e\n"
        "for _ in range(50):\n"
        "    try:\n"
        f"        sys.stdout.write(u.urlopen('http://127.0.0.1:{port}/', timeout=30).read().decode()); break\n"
        "    except e.HTTPError as err: sys.stdout.write(err.read().decode()); break\n"
        "    except OSError: time.sleep(0.1)\n"
    )
    return daemon.nsenter("python3", "-c", code).stdout


def play(daemon: BenchDaemon, lab: list[Step], upto: int | None = None, rewrite: Rewrite | None = None) -> list[str]:
    """Play steps 1..upto (all by default); returns every command's output, in order.
    A rewritten lab may contain commands that fail, as a student's would: they do not stop it."""
    outputs: list[str] = []
    for step in lab[: upto if upto is not None else len(lab)]:
        for original in step.commands:
            command = rewrite(original) if rewrite else original
            if command is None:
                continue
            if command[0] == "curl":
                outputs.append(http_get(daemon, int(command[1])))
            else:
                done = daemon.docker(*command, input=step.stdin, check=rewrite is None)
                outputs.append(done.stdout)
    return outputs


def replace(old: str, new: str) -> Rewrite:
    """A rewrite that replaces one word (or part of an argument) everywhere."""
    return lambda command: tuple(arg.replace(old, new) for arg in command)
