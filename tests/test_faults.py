"""Faults on the real bench: signals at several moments of a grade, the grader killed outright,
concurrent graders on one daemon, a store that is locked, unwritable or read-only, and a
damaged results row. Each ends in a clear line and an exit code, with nothing of the
grader's left on the student's daemon."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench import labs
from bench.daemon import BenchDaemon
from bench.system import read_only

pytestmark = pytest.mark.docker

LIFE = 3  # GRADER_PROBE_LIFE of the runs this suite kills outright


def grader(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "grader.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def grade_args(daemon: BenchDaemon, rubric: str, db: str, *extra: str) -> list[str]:
    return ["grade", "--rubric", rubric, "--student", "a", "--docker-host", daemon.host, "--db", db, *extra]


def probe_containers(daemon: BenchDaemon, *flags: str) -> list[str]:
    return daemon.docker("ps", *flags, "-q", "--filter", "label=grader.probe=1").stdout.split()


def exited(daemon: BenchDaemon) -> list[str]:
    """Probe containers that ran and ended but are still there (AutoRemove did not remove them)."""
    return probe_containers(daemon, "-a", "--filter", "status=exited")


def wait_for_probes(daemon: BenchDaemon, proc: subprocess.Popen[str], *flags: str, timeout: float = 20) -> None:
    """Until a probe container is there (``-a``: created; none: running), or the run ended."""
    deadline = time.monotonic() + timeout
    while not probe_containers(daemon, *flags) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("lab", ["links", "networks"])
def test_signals_at_any_moment_leave_nothing(daemon: BenchDaemon, tmp_path: Path, lab: str) -> None:
    """SIGINT, SIGTERM and SIGHUP early (starting up), while probe containers are being made,
    and while they run: each run ends with its own exit code and one line, never a
    traceback, and no probe container is left right after it."""
    labs.play(daemon, labs.LINKS_LAB if lab == "links" else labs.NETWORKS_LAB)
    rubric = f"docker-{lab}"
    seen: list[tuple[str, object, int]] = []
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        for moment in (0.4, 0.9, "probing"):
            proc = grader(*grade_args(daemon, rubric, f"sqlite:///{tmp_path / 'g.db'}"))
            if moment == "probing":
                wait_for_probes(daemon, proc, "-a")
            else:
                time.sleep(moment)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=60)
            seen.append((signum.name, moment, proc.returncode))
            assert "Traceback" not in err, (signum.name, moment, err)
            assert proc.returncode in (0, 128 + signum), (signum.name, moment, err)  # 0: done before it came
            if proc.returncode:
                assert err.strip() == f"grader: interrupted ({signum.name}); probe containers were removed"
            assert probe_containers(daemon, "-a") == [], (signum.name, moment)
    assert sum(code != 0 for *_, code in seen) >= 6, seen  # most signals came while it worked


def test_a_killed_grader_leaves_nothing_past_the_probe_life(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    """SIGKILL cannot be handled: the probe containers end by themselves at the deadline fixed
    when each was created (AutoRemove), also one whose start the daemon finished late, and a
    probe container a dead run created but never started is swept by the next run once its
    deadline is past."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    since = time.time()
    for _ in range(2):
        proc = grader(*grade_args(networks_lab, "docker-networks", db), env={"GRADER_PROBE_LIFE": str(LIFE)})
        wait_for_probes(networks_lab, proc)  # running: its end is the bound under test
        proc.kill()
        proc.wait()
    # Gone once they ended (AutoRemove); one killed between its creation and its start stays
    # created, never started, until a later run sweeps it.
    deadline = time.monotonic() + 30
    while (probe_containers(networks_lab) or exited(networks_lab)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert probe_containers(networks_lab) == [] and exited(networks_lab) == []
    # The bound itself, from the daemon's own record: no probe container's process outlived its
    # deadline, however late its start (the daemon records a container's end within a second).
    events = networks_lab.docker(
        "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
        "--filter", "label=grader.probe=1", "--filter", "event=die",
        "--format", '{{.TimeNano}} {{index .Actor.Attributes "grader.deadline"}}',
    ).stdout.split("\n")  # fmt: skip
    ended = [(int(nanos) / 1e9, int(deadline)) for nanos, deadline in (e.split() for e in events if e.strip())]
    assert ended, "no probe container ended"
    assert all(died < deadline + 1 for died, deadline in ended), ended

    # What a grader killed between creating and starting a probe container leaves behind.
    # (Earlier graders labelled its life, from its creation, rather than its deadline.)
    for label in (f"grader.deadline={int(time.time())}", "grader.life=1"):
        labels = ["--label", "grader.probe=1", "--label", "grader.run=dead", "--label", label]
        leftover = networks_lab.docker("create", *labels, "--network", "backend-network", "alpine", "sleep", "1")
        assert leftover.stdout.strip()[:12] in probe_containers(networks_lab, "-a")
    time.sleep(10 + 2)  # past the sweep's margin after its deadline, and after the killed runs' deadlines
    proc = grader(*grade_args(networks_lab, "docker-networks", db, "--format", "json"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert probe_containers(networks_lab, "-a") == []


def test_concurrent_graders_on_one_daemon_agree(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    """Four graders at once, ten rounds: every attempt of the finished lab has full marks (an
    exec stream that came back empty is run again, never scored from nothing)."""
    scores: list[tuple[float, float]] = []
    wrong: list[dict] = []
    for round_ in range(10):
        procs = [
            grader(*grade_args(networks_lab, "docker-networks", f"sqlite:///{tmp_path}/g{i}.db", "--format", "json"))
            for i in range(4)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            report = json.loads(out)
            scores.append((report["score"], report["max_score"]))
            if proc.returncode != 0:
                wrong.append(
                    {"round": round_, "err": err, "not passed": [c for c in report["checks"] if not c["passed"]]}
                )
    assert wrong == []
    assert len(scores) == 40 and all(score == top for score, top in scores)
    assert probe_containers(networks_lab, "-a") == []


def test_a_locked_store_shows_the_result_and_exits_4(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    first = grader(*grade_args(networks_lab, "docker-networks", f"sqlite:///{path}"))
    assert first.wait(timeout=120) == 0
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another grader holding the write lock
    try:
        started = time.monotonic()
        proc = grader(*grade_args(networks_lab, "docker-networks", f"sqlite:///{path}", "--format", "json"))
        out, err = proc.communicate(timeout=120)
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 4, err
    assert json.loads(out)["score"] == json.loads(out)["max_score"]  # the result is shown
    [line] = err.strip().splitlines()
    assert line.startswith("grader: graded, not stored: cannot store the attempt in sqlite:///")
    assert line.endswith("another grader held the database locked for more than 10 s; try again")
    assert 10 <= waited < 30


def test_an_unwritable_store_shows_the_result_and_exits_4(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    db = f"sqlite:///{tmp_path / 'file' / 'g.db'}"  # a folder that cannot exist
    proc = grader("check", "--rubric", "docker-networks", "--docker-host", networks_lab.host, "--db", db)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    assert "embedded-dns" in out or "Embedded DNS" in out or "DNS" in out  # the checklist was printed
    [line] = err.strip().splitlines()
    assert line.startswith(f"grader: graded, not stored: cannot open the results database {db}")


def test_export_and_report_read_a_read_only_store(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    """The store's folder mounted read-only (root ignores file permissions; a read-only mount
    it cannot write), in a mount namespace of the command's own."""
    folder, out_dir = tmp_path / "class", tmp_path / "site"
    folder.mkdir()
    db = f"sqlite:///{folder / 'g.db'}"
    assert grader(*grade_args(networks_lab, "docker-networks", db)).wait(timeout=120) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["g.db"]
    for args in (["export", "--db", db, "--format", "csv"], ["report", "--db", db, "--out", str(out_dir)]):
        command = [sys.executable, "-m", "grader.cli", *args]
        done = subprocess.run(read_only(folder, *command), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert (out_dir / "index.html").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["g.db"]
    # Without read-only opening, the same export fails on that mount.
    probe = subprocess.run(read_only(folder, "touch", str(folder / "x")), capture_output=True, text=True)
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr


def test_a_damaged_results_row_is_that_attempts_error(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    db = f"sqlite:///{path}"
    for student in ("a", "b"):
        args = grade_args(networks_lab, "docker-networks", db)
        args[args.index("--student") + 1] = student
        assert grader(*args).wait(timeout=120) == 0
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE attempts SET results = '[{\"id\": 1' WHERE id = 1")
    for args in (["export", "--db", db, "--format", "json"], ["report", "--db", db, "--out", str(tmp_path / "site")]):
        done = subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
        if args[0] == "export":
            students = {s["student"]: s for s in json.loads(done.stdout)}
            assert "its stored results cannot be read" in json.dumps(students["a"])
            assert students["b"]["score"] == students["b"]["max_score"]
