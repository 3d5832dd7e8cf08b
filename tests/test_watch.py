"""`check --watch` on the real bench: a student plays a lab step by step (the explore steps
with --rm) while the watcher follows the daemon's events."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bench import labs
from bench.daemon import BenchDaemon

from grader.grading import Graded
from grader.report import attempt_file, build
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
    # The attempt page shows what was seen and when.
    build(Store(db), tmp_path / "site")
    page = (tmp_path / "site" / attempt_file(attempts[-1])).read_text()
    assert "<h2>Timeline</h2>" in page and "<h2>Seen while the student worked</h2>" in page
    assert "<code>ping -c 1 redis</code>" in page and "redis-server:redis" in page


def test_check_watch_in_a_terminal_to_full_marks_then_interrupted(daemon: BenchDaemon, tmp_path: Path) -> None:
    """A student plays lab 2 (the explore steps with --rm) while `grader check --watch` runs in
    a pty: the checklist reaches full marks, the --rm steps count, the timeline is stored, and
    SIGINT, then SIGTERM on a second watch, leave nothing of the grader's on the daemon."""
    db = tmp_path / "g.db"
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        screen = Screen(
            [sys.executable, "-m", "grader.cli", "check", "--watch", "--rubric", "docker-networks"]
            + ["--docker-host", daemon.host, "--db", f"sqlite:///{db}"]
        )
        try:
            screen.wait_for("Total: ")
            if signum == signal.SIGINT:
                labs.play(daemon, labs.NETWORKS_LAB, rewrite=with_rm)
                screen.wait_for("Everything passes")
            screen.proc.send_signal(signum)
            assert screen.proc.wait(timeout=60) == code, screen.text()
        finally:
            screen.close()
        assert "Traceback" not in screen.text()
        assert probe_containers(daemon) == []
    attempts = Store(f"sqlite:///{db}").attempts("docker-networks")
    full = [a for a in attempts if a.source == "watch" and a.score == a.max_score]
    assert full, [(a.source, a.score) for a in attempts]
    stored = Store(f"sqlite:///{db}").snapshot(full[0].snapshot_digest)
    assert {c.id for c in full[0].checks if c.id.endswith("-ran")} == {"env-ran", "resolv-ran", "ping-ran"}
    assert {tuple(c["Config"]["Cmd"]) for c in stored.ephemeral} >= {("env",), ("cat", "/etc/resolv.conf")}
    assert ("network", "disconnect") in {(e["type"], e["action"]) for e in stored.timeline}


class Screen:
    """A command in a pseudo-terminal, its output read as it comes."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            assert time.monotonic() < deadline and self.proc.poll() is None, self.text()[-3000:]
            time.sleep(0.1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
