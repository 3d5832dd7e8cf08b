"""``grader rubric test``: prove a rubric right before a class. Its reference solution
(``reference:``, the lab's commands) must get full marks, and each of its known mistakes
(``mistakes:``, each with its commands) must fail exactly the checks it lists, every other
check passing. Each case is played on a clean daemon with the docker CLI, as a student types
it, then graded.

The daemon is a throwaway private engine (``grader.sandbox``) unless ``--docker-host`` names
one; such a daemon must hold no container and no user network (playing the cases removes
everything on it between them), and is left empty at the end.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import docker
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .collect import collect, connect
from .errors import UsageError
from .evaluate import evaluate
from .probe.runner import DEFAULT_PROBE_IMAGE
from .rubric import load
from .rubric.model import LabFile, LabStep, Rubric, http_port
from .sandbox import PrivateEngine, http_get, local_images
from .text import printable, shown

COMMAND_TIMEOUT = 120  # seconds one command of a case may take
MARKS = {True: "✔", False: "✘"}


@dataclass
class CaseResult:
    """How one case came out: the checks it must fail, the ones that did not pass, and the
    commands that failed while it was played (a mistake's may, the reference's must not)."""

    name: str
    expected: list[str]  # check ids that must not pass
    failing: list[str]  # check ids that did not pass
    statuses: dict[str, str]  # every check's status
    broken: list[str] = field(default_factory=list)  # commands that failed: "command: why"
    reference: bool = False

    @property
    def held(self) -> bool:
        return set(self.expected) == set(self.failing) and not (self.reference and self.broken)


def test_rubric(
    rubric_ref: str,
    *,
    docker_host: str | None = None,
    probe_image: str = DEFAULT_PROBE_IMAGE,
    progress: Callable[[str], None] | None = None,
) -> tuple[Rubric, list[CaseResult]]:
    """Play and grade the rubric's cases on ``docker_host`` (which must be empty), or on a
    throwaway private engine holding copies of the local daemon's images the cases name."""
    rubric = load(rubric_ref)
    cases(rubric)  # a rubric without a reference is refused before any engine starts
    if docker_host is not None:  # named, even empty: checked as grade checks it, never the local daemon
        return rubric, run_cases(rubric, docker_host, None, probe_image, progress)
    named = {probe_image} | {word for _, steps, _ in cases(rubric) for step in steps for word in _words(step)}
    with PrivateEngine() as engine:
        if progress:
            progress("a private Docker engine")
        engine.copy_images(local_images(named))
        return rubric, run_cases(rubric, engine.host, engine.http_get, probe_image, progress)


def _words(step: LabStep) -> list[str]:
    """The words of a step, among them the images it names (a compose file's ``image: redis`` too)."""
    return re.findall(r"[^\s,{}\[\]'\"]+", step.text) if isinstance(step, LabFile) else shlex.split(step)


def cases(rubric: Rubric) -> list[tuple[str, list[LabStep], list[str]]]:
    """(name, steps, checks that must not pass) of the reference, then of each mistake."""
    if not rubric.reference:
        raise UsageError(f"rubric {rubric.id} has no reference: nothing to test (see docs/rubrics.md)")
    return [("reference", rubric.reference, []), *((m.name, m.commands, m.fails) for m in rubric.mistakes)]


def run_cases(
    rubric: Rubric,
    docker_host: str,
    http_get: Callable[[int], str | None] | None,
    probe_image: str = DEFAULT_PROBE_IMAGE,
    progress: Callable[[str], None] | None = None,
) -> list[CaseResult]:
    """Play and grade every case on the daemon at ``docker_host``, which must be empty;
    ``http_get(port)`` is a case's ``curl docker:PORT`` (why it failed, or None), by default a
    GET to the port on the daemon's host."""
    results = []
    with _empty_daemon(docker_host) as client:
        http_get = http_get or _http_getter(docker_host)  # the URL is valid once connected
        for name, steps, fails in cases(rubric):
            if progress:
                progress(name)
            _reset(client)
            broken = play(docker_host, steps, http_get)
            snapshot = collect(rubric.probes(), client=client, probe_image=probe_image)
            outcome = evaluate(rubric, snapshot)
            statuses = {c.id: c.status for c in outcome.checks}
            failing = [c.id for c in outcome.checks if not c.passed]
            results.append(CaseResult(name, fails, failing, statuses, broken, reference=name == "reference"))
        _reset(client)
    return results


@contextmanager
def _empty_daemon(docker_host: str) -> Iterator[docker.DockerClient]:
    client = connect(docker_host)
    try:
        containers = client.api.containers(all=True)
        networks = [n for n in client.api.networks() if n.get("Name") not in ("bridge", "host", "none")]
        if containers or networks:
            raise UsageError(
                f"{docker_host} holds {len(containers)} containers and {len(networks)} user networks: "
                "rubric test plays its cases on an empty daemon and removes what they make; "
                "leave out --docker-host for a throwaway private engine"
            )
        yield client
    finally:
        client.close()


def _reset(client: docker.DockerClient) -> None:
    """Remove every container and user network: only the cases' own (the daemon was empty)."""
    for c in client.api.containers(all=True):
        client.api.remove_container(c["Id"], force=True, v=True)
    for n in client.api.networks():
        if n.get("Name") not in ("bridge", "host", "none"):
            client.api.remove_network(n["Id"])


def play(docker_host: str, steps: list[LabStep], http_get: Callable[[int], str | None]) -> list[str]:
    """Play a case's steps against the daemon, in an empty folder of its own (its files are
    written there, and there ``docker compose`` finds them and names its project after it);
    returns the commands that failed, each as "command: why"."""
    with tempfile.TemporaryDirectory(prefix="lab-") as folder:
        problems = []
        for step in steps:
            if isinstance(step, LabFile):
                (Path(folder) / step.write).write_text(step.text)
            elif problem := _play(docker_host, step, http_get, folder):
                problems.append(problem)
        return problems


def _play(docker_host: str, command: str, http_get: Callable[[int], str | None], folder: str) -> str | None:
    """Run one command of a case against the daemon, in ``folder``; why it failed, or None."""
    argv = shlex.split(command)
    if argv[0] == "curl":
        port = http_port(argv[1])
        assert port is not None  # the rubric's model checked it
        problem = http_get(port)
        return f"{command}: {problem}" if problem else None
    try:
        done = subprocess.run(
            ["docker", "-H", docker_host, *argv[1:]],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT,
            cwd=folder,
        )
    except subprocess.TimeoutExpired:
        return f"{command}: no end within {COMMAND_TIMEOUT} s"
    except OSError as exc:
        raise UsageError(f"cannot run the docker CLI ({exc.strerror}): rubric test plays the cases with it") from None
    if done.returncode != 0:
        return f"{command}: {(done.stderr.strip().splitlines() or ['exit ' + str(done.returncode)])[0]}"
    return None


def _http_getter(docker_host: str) -> Callable[[int], str | None]:
    """``curl docker:PORT`` for a daemon at ``docker_host``: its published ports are on its host
    (this machine for a unix socket)."""
    host = urllib.parse.urlsplit(docker_host).hostname or "127.0.0.1"
    return lambda port: http_get(f"http://{host}:{port}/")


# -- output ----------------------------------------------------------------------------------


def as_table(results: list[CaseResult]) -> RenderableType:
    """A table per case: the checks it must fail and those that did not pass, whether each is
    as expected; the commands that failed; then how many cases held."""
    parts: list[RenderableType] = []
    for r in results:
        table = Table(title=shown(f"{MARKS[r.held]} {r.name}"), title_justify="left", expand=False)
        for column in ("check", "must", "got", ""):
            table.add_column(column)
        for check_id in sorted(set(r.expected) | set(r.failing), key=list(r.statuses).index):
            must = "not pass" if check_id in r.expected else "pass"
            ok = (check_id in r.expected) == (check_id in r.failing)
            table.add_row(shown(check_id), must, r.statuses[check_id], Text(MARKS[ok], "green" if ok else "red"))
        if not table.rows:
            table.add_row("every check", "pass", "passed", Text(MARKS[True], "green"))
        parts.append(table)
        parts.extend(shown(f"  command failed: {problem}", "yellow") for problem in r.broken)
    held = sum(r.held for r in results)
    parts.append(Text(f"{held} of {len(results)} cases hold", "green" if held == len(results) else "red"))
    return Group(*parts)


def as_json(rubric: Rubric, results: list[CaseResult]) -> str:
    cases = [
        {"name": r.name, "held": r.held, **{k: getattr(r, k) for k in ("expected", "failing", "broken")}}
        for r in results
    ]
    for case, r in zip(cases, results, strict=True):
        case["statuses"] = r.statuses
    return json.dumps({"rubric": {"id": rubric.id, "version": rubric.version}, "cases": cases}, indent=1)


def as_junit(rubric: Rubric, results: list[CaseResult]) -> str:
    suite = ET.Element("testsuite", name=f"rubric test {rubric.id}", tests=str(len(results)))
    suite.set("failures", str(sum(not r.held for r in results)))
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=rubric.id, name=printable(r.name))
        if not r.held:
            wrong = sorted(set(r.expected) ^ set(r.failing))
            message = printable(f"checks not as expected: {', '.join(wrong)}" + "".join(f"; {b}" for b in r.broken))
            ET.SubElement(case, "failure", message=message).text = message
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
