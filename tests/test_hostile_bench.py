"""Hostile daemon state on the real bench: what a student (or a broken lab) can put on their
own daemon must give a bounded, clear grade and nothing raw on the instructor's terminal."""

from __future__ import annotations

import json
import resource
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
    """A command that prints 300 MB in the student's container: the grader keeps 1 MB, counts
    the rest, and its memory stays bounded (a 1 GB output took 2.6 GB before)."""
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
    assert probe["data"]["dropped_bytes"] == 300_000_000 - (1 << 20)
    assert peak_kib < 400 * 1024, peak_kib
