"""Hostile daemon state on the real bench: what a student (or a broken lab) can put on their
own daemon must give a bounded, clear grade and nothing raw on the instructor's terminal."""

from __future__ import annotations

import json
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
from bench import labs
from bench.daemon import BenchDaemon

pytestmark = pytest.mark.docker

ESCAPES = "\x1b[2J\x1b[31mPWNED"


def grader(*args: str) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """The run, its wall time and the peak memory of the grader process (KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True, timeout=300)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return done, time.perf_counter() - started, max(peak, before)


def test_a_megabyte_command_and_an_escape_named_network(daemon: BenchDaemon, tmp_path: Path) -> None:
    """A created container whose command is 1 MB took 84 s to grade; a network named with
    terminal escapes cleared the instructor's screen from the table."""
    labs.play(daemon, labs.NETWORKS_LAB)
    client = docker.DockerClient(base_url=daemon.host)
    try:
        client.networks.create(ESCAPES)
        client.containers.create("alpine", ["sh", "-c", "ping " * 200_000], network="backend-network")
    finally:
        client.close()
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "id: r\ntitle: r\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: ping-ran, title: ping ran, ran: {image: alpine, command: 'ping .*redis'}}\n"
        f"      - {{id: escaped, title: network, network: {{name: {json.dumps(ESCAPES)}}}}}\n"
    )
    done, seconds, _ = grader(
        "grade", "--rubric", str(rubric), "--student", "s", "--docker-host", daemon.host,
        "--db", f"sqlite:///{tmp_path / 'g.db'}",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert seconds < 15, seconds
    assert "\x1b" not in done.stdout and "\\x1b[2J\\x1b[31mPWNED" in done.stdout


def test_a_huge_probe_output_is_capped(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    """A command that prints 300 MB in the student's container: the grader keeps its first 1 MB
    and reads no further, and its memory stays bounded (a 1 GB output took 2.6 GB before)."""
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "id: r\ntitle: r\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: big, title: big, command: {container: redis, argv: [head, -c, '300000000', /dev/zero],"
        " expect: 'never'}}\n"
    )
    db = tmp_path / "g.db"
    done, _, peak_kib = grader(
        "grade", "--rubric", str(rubric), "--student", "s", "--docker-host", networks_lab.host,
        "--db", f"sqlite:///{db}", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    [check] = json.loads(done.stdout)["checks"]
    assert check["status"] == "failed"
    with sqlite3.connect(db) as connection:
        [(body,)] = connection.execute("SELECT body FROM snapshots").fetchall()
    snapshot = json.loads(body)
    [probe] = snapshot["probes"].values()
    assert probe["data"]["truncated_at"] == 1 << 20 and len(probe["output"]) == 1 << 20
    assert peak_kib < 400 * 1024, peak_kib


def leftovers(daemon: BenchDaemon, container: str) -> tuple[list[str], list[str]]:
    """The processes in ``container`` but its main one (and the shell that looks), and what is
    left in its /tmp."""
    look = 'for d in /proc/[0-9]*; do case ${d#/proc/} in 1|$$) ;; *) tr "\\0" " " <$d/cmdline; echo;; esac; done'
    listed = daemon.docker("exec", container, "sh", "-c", f"{look}; echo --; ls -A /tmp").stdout
    processes, files = listed.split("--\n")
    return [p.strip() for p in processes.splitlines() if p.strip()], files.split()


def test_a_command_whose_child_holds_its_output_ends_and_leaves_nothing(
    networks_lab: BenchDaemon, tmp_path: Path
) -> None:
    """A student's `redis-cli` that leaves `sleep 100000 &` holding its output: `grade` ran
    9 min 51 s (SIGINT, SIGTERM and `batch --timeout` did not end it) and left `sh`, `head`,
    `sleep` and a /tmp folder in the container. In a busybox container too."""
    networks_lab.docker("exec", "redis", "sh", "-c", "mv /usr/bin/redis-cli /usr/bin/redis-cli.real")
    script = '#!/bin/sh\nredis-cli.real "$@"\nsleep 100000 &\n'
    networks_lab.docker("exec", "redis", "sh", "-c",
        f"printf '{script}' >/usr/bin/redis-cli"
        "; chmod +x /usr/bin/redis-cli")  # fmt: skip
    networks_lab.docker("run", "-d", "--name", "bb", "alpine-busybox", "sleep", "3600")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "id: r\ntitle: r\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: keys, title: k, command: {container: redis, argv: [redis-cli, INFO, keyspace],"
        " expect: 'db0:keys=[1-9]'}}\n"
        "      - {id: bb, title: b, command: {container: bb, argv: [sh, -c, 'echo PONG; sleep 100000 &'],"
        " expect: '^PONG$'}}\n"
    )
    db = f"sqlite:///{tmp_path / 'g.db'}"
    args = ["--student", "s", "--docker-host", networks_lab.host, "--format", "json", "--db", db]
    done, seconds, _ = grader("grade", "--rubric", str(rubric), *args)
    assert done.returncode == 0, done.stderr
    assert {c["id"]: c["status"] for c in json.loads(done.stdout)["checks"]} == {"keys": "passed", "bb": "passed"}
    assert seconds < 30, seconds
    assert leftovers(networks_lab, "redis") == ([], []) and leftovers(networks_lab, "bb") == ([], [])

    # Stuck in a command (it runs to its 8 s timeout): SIGTERM and SIGINT end the grade at once.
    slow = tmp_path / "slow.yaml"
    slow.write_text(rubric.read_text().replace("'echo PONG; sleep 100000 &'", "'echo PONG; exec sleep 100000'"))
    for signum in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            [sys.executable, "-m", "grader.cli", "grade", "--rubric", str(slow), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started = time.monotonic()
        while "grader-" not in " ".join(leftovers(networks_lab, "bb")[1]) and time.monotonic() - started < 20:
            time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, err
        assert time.monotonic() - sent < 5, time.monotonic() - sent
        assert leftovers(networks_lab, "redis") == ([], []) and leftovers(networks_lab, "bb") == ([], [])


@pytest.mark.parametrize(
    "case",
    [
        # (a command, a pattern on its first line)
        pytest.param(("printf 'no newline'", "^no newline$"), id="no-final-newline"),
        pytest.param(("echo BIN; head -c 6000 /dev/urandom", "^BIN$"), id="binary"),
        pytest.param(("echo first; seq 1 4000", "^first$"), id="20kB"),
        pytest.param(("echo first; head -c 200000000 /dev/zero", "^first$"), id="200MB"),
    ],
)
def test_a_command_is_judged_on_its_own_output_from_its_start(
    daemon: BenchDaemon, tmp_path: Path, case: tuple[str, str]
) -> None:
    """Two commands in one container: each is matched on its own output, kept from its start.
    A 20 kB output (or 6 kB of binary) failed a match on its first line ("did not match"),
    200 MB too (its end was kept, and the cap's SIGPIPE made it a failure); an output without
    a final newline swallowed the next section's header, so its check was judged on both
    outputs (`^second$` passed on `printf 'no newline'`)."""
    command, pattern = case
    daemon.docker("run", "-d", "--name", "box", "alpine-busybox", "sleep", "3600")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "id: r\ntitle: r\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        f"      - {{id: first, title: f, command: {{container: box, argv: [sh, -c, {json.dumps(command)}],"
        f" expect: {json.dumps(pattern)}}}}}\n"
        f"      - {{id: not-second, title: n, command: {{container: box, argv: [sh, -c, {json.dumps(command)}],"
        " expect: '^second$'}}\n"
        "      - {id: second, title: s, command: {container: box, argv: [echo, second], expect: 'newline|BIN|first'}}\n"
    )
    done, seconds, peak_kib = grader(
        "grade", "--rubric", str(rubric), "--student", "s", "--docker-host", daemon.host,
        "--db", f"sqlite:///{tmp_path / 'g.db'}", "--format", "json",
    )  # fmt: skip
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["first"]["status"] == "passed", checks["first"]
    assert checks["second"]["status"] == "failed", checks["second"]  # it printed only "second"
    assert checks["not-second"]["status"] == "failed", checks["not-second"]  # never another command's output
    if "200000000" in command:
        assert "in its first 1048576 bytes" in checks["first"]["message"]
        assert peak_kib < 400 * 1024, peak_kib
    assert seconds < 30, seconds
    assert leftovers(daemon, "box") == ([], [])
