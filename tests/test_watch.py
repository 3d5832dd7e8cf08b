"""`check --watch` on the real bench: a student plays a lab step by step (the explore steps
with --rm) while the watcher follows the daemon's events."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bench import labs
from bench.daemon import BenchDaemon

from grader.grading import Graded
from grader.store import Store
from grader.watch import Watch, watching

pytestmark = pytest.mark.docker


def with_rm(command: labs.Command) -> labs.Command:
    """The explore steps as students often type them: `docker run --rm ... alpine ...`."""
    if command[0] == "run" and "-d" not in command and "-i" not in command:
        return ("run", "--rm", *command[1:])
    return command


def wait_for(results: list[Graded], done: Callable[[Graded], bool], timeout: float = 60) -> Graded:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if results and done(results[-1]):
            return results[-1]
        time.sleep(0.05)
    last = results[-1].outcome if results else None
    raise AssertionError(f"not reached in {timeout} s: {last and [(c.id, c.status) for c in last.checks]}")


def probe_containers(daemon: BenchDaemon) -> list[str]:
    return daemon.docker("ps", "-aq", "--filter", "label=grader.probe=1").stdout.split()


def test_the_watch_counts_rm_steps_and_keeps_the_timeline(daemon: BenchDaemon, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    results: list[Graded] = []
    watch = Watch(
        "docker-links",
        student="s",
        show=lambda g, _note, pending: pending or results.append(g),
        docker_host=daemon.host,
        db_url=db,
    )
    with watching(watch):
        wait_for(results, lambda g: True)
        labs.play(daemon, labs.LINKS_LAB, rewrite=with_rm)
        final = wait_for(results, lambda g: g.outcome.passed)
    assert daemon.docker("ps", "-aq", "--filter", "ancestor=alpine").stdout.split() == []  # all gone (--rm)
    passed = {c.id for c in final.outcome.checks if c.passed}
    assert {"env-ran", "hosts-ran", "ping-ran"} <= passed
    assert probe_containers(daemon) == []
    attempts = Store(db).attempts("docker-links")
    assert attempts[-1].source == "watch" and attempts[-1].score == attempts[-1].max_score
    stored = Store(db).snapshot(attempts[-1].snapshot_digest)
    assert [c["Config"]["Cmd"] for c in stored.ephemeral if c["Config"]["Image"] == "alpine"] == [
        ["env"],
        ["cat", "/etc/hosts"],
        ["ping", "-c", "1", "redis"],
    ]
    actions = [(e["type"], e["action"]) for e in stored.timeline]
    assert actions[0] == ("container", "create") and ("container", "destroy") in actions
    assert not any("grader" in e["name"] for e in stored.timeline)  # the probes are not the student's
