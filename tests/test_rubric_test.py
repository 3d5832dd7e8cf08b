"""`grader rubric test` on the real bench: the bundled rubrics' reference solutions get full
marks and each typical mistake fails exactly its checks, on a throwaway private engine (this
machine's dockerd, images copied from a bench daemon) and on a bench daemon of each kind given
with --docker-host; a wrong expectation fails with a clear table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from bench.daemon import BenchDaemon
from bench.engines import compose_config

from grader.sandbox import STATE

pytestmark = pytest.mark.docker
RUBRICS = Path(__file__).parent.parent / "rubrics"


def rubric_test(*args: str, daemon: BenchDaemon, inside: bool) -> subprocess.CompletedProcess[str]:
    """The command; ``inside`` runs it in the bench daemon's network namespace, where the ports
    its containers publish are (as a student's `curl docker:3000` reaches them). Its docker CLI
    has `docker compose` (Compose v2)."""
    command = [sys.executable, "-m", "grader.cli", "rubric", "test", *args]
    prefix = ["nsenter", f"--net={daemon.netns_path}"] if inside else []
    env = {**os.environ, "DOCKER_HOST": daemon.host, "COLUMNS": "120", "DOCKER_CONFIG": str(compose_config())}
    return subprocess.run([*prefix, *command], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.engines("20.10")
@pytest.mark.parametrize("rubric", ["docker-links", "docker-networks"])
def test_bundled_rubrics_hold_on_a_private_engine(daemon: BenchDaemon, rubric: str) -> None:
    """The local daemon (DOCKER_HOST) only lends its images: it is left as it was."""
    before = daemon.docker("ps", "-aq").stdout
    engines = set(STATE.iterdir()) if STATE.exists() else set()  # another session's may be there
    done = rubric_test(rubric, "--format", "json", daemon=daemon, inside=False)
    assert done.returncode == 0, done.stdout + done.stderr
    cases = json.loads(done.stdout)["cases"]
    assert cases[0]["name"] == "reference" and cases[0]["failing"] == [] and len(cases) >= 7
    assert all(case["held"] for case in cases)
    assert daemon.docker("ps", "-aq").stdout == before
    assert set(STATE.iterdir()) <= engines  # its engine is gone


@pytest.mark.engines("28.5")
def test_bundled_rubrics_hold_on_docker_28(daemon: BenchDaemon) -> None:
    for rubric in ("docker-links", "docker-networks"):
        done = rubric_test(rubric, "--docker-host", daemon.host, "--format", "junit", daemon=daemon, inside=True)
        assert done.returncode == 0, done.stdout + done.stderr
        suite = ET.fromstring(done.stdout).find("testsuite")
        assert suite is not None and suite.get("failures") == "0" and int(suite.get("tests") or 0) >= 7
    assert daemon.docker("ps", "-aq").stdout == ""  # left empty


def test_the_compose_rubric_holds(daemon: BenchDaemon) -> None:
    """Its cases write a compose file and run `docker compose up -d` in a folder of their own,
    so each project has another name: the checks select by Compose's labels. Compose v2 (2.40,
    forky's) drives both engines; on 20.10 too (API 1.41)."""
    done = rubric_test("docker-compose", "--docker-host", daemon.host, "--format", "json", daemon=daemon, inside=True)
    cases = json.loads(done.stdout)["cases"] if done.stdout else []
    wrong = [(c["name"], c["failing"], c["broken"]) for c in cases if not c["held"]]
    assert done.returncode == 0 and not wrong, wrong or done.stderr
    assert len(cases) >= 6 and cases[0]["failing"] == []
    assert daemon.docker("ps", "-aq").stdout == ""  # left empty


@pytest.mark.engines("20.10")
def test_a_wrong_expectation_fails_with_a_clear_table(daemon: BenchDaemon, tmp_path: Path) -> None:
    """The app-not-linked mistake said to fail app-port (it does not) instead of app-counts."""
    text = (RUBRICS / "docker-links.yaml").read_text()
    head, cases = text.split("\nreference:\n")
    cases = "\n".join(cases.split("\n  - name: redis-server stopped at the end")[0].splitlines())
    wrong = tmp_path / "docker-links.yaml"
    cases = cases.replace("fails: [app-link, app-counts]", "fails: [app-link, app-port]")
    wrong.write_text(head + "\nreference:\n" + cases)
    done = rubric_test(str(wrong), "--docker-host", daemon.host, daemon=daemon, inside=True)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
    assert "✔ reference" in lines and "✘ the app not linked" in lines
    assert "app-port not pass passed ✘" in lines and "app-counts pass failed ✘" in lines
    assert "app-link not pass failed ✔" in lines
    assert lines[-1] == "1 of 2 cases hold"


def test_a_daemon_in_use_and_a_rubric_without_cases_are_refused(daemon: BenchDaemon) -> None:
    daemon.docker("network", "create", "someone-elses")
    done = rubric_test("docker-links", "--docker-host", daemon.host, daemon=daemon, inside=False)
    assert done.returncode == 2 and "holds 0 containers and 1 user networks" in done.stderr
    assert daemon.docker("network", "ls", "-q", "--filter", "name=someone-elses").stdout.strip()  # untouched
    bare = "id: bare\ntitle: b\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
    bare += "      - {id: n, title: n, network: {name: x}}"
    path = Path(daemon.run_dir) / "bare.yaml"
    path.write_text(bare)
    done = rubric_test(str(path), daemon=daemon, inside=False)
    assert (
        done.returncode == 2
        and done.stderr.strip() == "grader: rubric bare has no reference: nothing to test (see docs/rubrics.md)"
    )


@pytest.mark.engines("20.10")
def test_sigterm_removes_the_private_engine(daemon: BenchDaemon) -> None:
    command = [sys.executable, "-m", "grader.cli", "rubric", "test", "docker-links"]
    engines = {f.name for f in STATE.iterdir()} if STATE.exists() else set()  # another session's
    netns = set(os.listdir("/var/run/netns"))
    proc = subprocess.Popen(
        command, env={**os.environ, "DOCKER_HOST": daemon.host}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not (STATE.exists() and any((f / "docker.pid").exists() for f in STATE.iterdir() if f.name not in engines)):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(3)  # playing its cases
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert not [f for f in STATE.iterdir() if f.name not in engines]
    assert not [ns for ns in os.listdir("/var/run/netns") if ns.startswith("grader-") and ns not in netns]


@pytest.mark.parametrize("rubric", ["docker-host-ports", "docker-round-robin"])
def test_the_isolation_and_round_robin_labs_hold(daemon: BenchDaemon, rubric: str, engine: str) -> None:
    """The labs checked from the students' own containers (``from:``): every case holds on
    both engines, on the session's bench daemon (one run per lab and engine)."""
    started = time.monotonic()
    done = rubric_test(rubric, "--docker-host", daemon.host, "--format", "json", daemon=daemon, inside=True)
    print(f"rubric test {rubric} on {engine}: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = json.loads(done.stdout)["cases"]
    assert cases[0]["name"] == "reference" and cases[0]["failing"] == [] and len(cases) >= 6
    assert all(case["held"] for case in cases), done.stdout
    assert daemon.docker("ps", "-aq").stdout == ""  # left empty
