"""End to end on the real bench: the labs played with the students' commands (and with
their typical mistakes), then ``grader grade`` on the daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench import labs
from bench.daemon import BenchDaemon
from click.testing import CliRunner

from grader.cli import main
from grader.collect import collect, connect
from grader.errors import DaemonUnreachable
from grader.facts import Selector, address_of
from grader.probe.spec import Origin, ProbeSpec

pytestmark = pytest.mark.docker


def grade(daemon: BenchDaemon, rubric: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--rubric",
            rubric,
            "--student",
            "alice",
            "--format",
            "json",
            "--docker-host",
            daemon.host,
            "--db",
            f"sqlite:///{tmp_path / 'grader.db'}",
            *extra,
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def not_passed(report: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"] if not c["passed"]}


def state(daemon: BenchDaemon) -> dict[str, object]:
    """Everything the grader must leave untouched: containers (their files too), networks, images."""
    ids = daemon.docker("ps", "-aq").stdout.split()
    fmt = "{{.Id}} {{.Name}} {{.State.Status}} {{.State.StartedAt}} {{json .NetworkSettings.Networks}}"
    return {
        "containers": daemon.docker("inspect", "--format", fmt, *ids).stdout if ids else "",
        "files": {i: daemon.docker("diff", i).stdout for i in ids},
        "networks": daemon.docker("network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}").stdout,
        "images": sorted(
            daemon.docker(
                "images", "-a", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"
            ).stdout.splitlines()
        ),
    }


@pytest.mark.parametrize("rubric", ["docker-links", "docker-networks"])
def test_reference_solution_scores_full_marks_and_changes_nothing(
    daemon: BenchDaemon, tmp_path: Path, rubric: str
) -> None:
    labs.play(daemon, labs.LABS[rubric])
    before = state(daemon)
    code, report = grade(daemon, rubric, tmp_path)
    assert state(daemon) == before
    assert not_passed(report) == {}
    assert code == 0
    assert report["score"] == report["max_score"] > 0
    assert report["rubric"] == {"id": rubric, "version": "1"}
    assert len(report["snapshot_digest"]) == 64
    api = {"20.10": "1.41", "28.5": "1.51"}[".".join(report["engine"]["version"].split(".")[:2])]
    assert report["engine"]["api_version"] == report["engine"]["negotiated_api_version"] == api
    assert report["engine"]["id"]
    messages = {c["id"]: c["message"] for c in report["checks"]}
    if rubric == "docker-links":  # deprecated in 28.4, the variables are still set by 28.5 (not by 29)
        assert messages["link-env"] == "6 REDIS_* variables set"
    else:  # 20.10's Aliases hold the short id; 28.5's do not, and its DNSNames list every name
        assert messages["redis-alias-db"] == "redis is on frontend-network2 with aliases ['db']"
    assert set(report) >= {"student", "rubric", "score", "max_score", "graded_at", "snapshot_digest", "engine"}
    assert set(report["checks"][0]) == {
        "id",
        "title",
        "task",
        "status",
        "passed",
        "points",
        "max_points",
        "expected",
        "actual",
        "message",
        "hint",
    }


@pytest.mark.parametrize("rubric", ["docker-links", "docker-networks"])
def test_a_busybox_only_probe_image_grades_alike(daemon: BenchDaemon, tmp_path: Path, rubric: str) -> None:
    """The probes need only busybox's applets: with no ``getent`` a name is looked up with
    busybox's nslookup, whose answer starts with the resolver's own address (127.0.0.11)."""
    labs.play(daemon, labs.LABS[rubric])
    results = {}
    for image in ("alpine", "alpine-busybox"):
        (tmp_path / image).mkdir()
        code, report = grade(daemon, rubric, tmp_path / image, "--probe-image", image)
        assert code == 0 and report["score"] == report["max_score"], not_passed(report)
        results[image] = [(c["id"], c["status"], c["points"]) for c in report["checks"]]
    assert results["alpine-busybox"] == results["alpine"]


def test_the_snapshot_keeps_the_engine_and_the_negotiated_api(bench: BenchDaemon, engine: str) -> None:
    snapshot = collect([], docker_host=bench.host)
    api = {"20.10": "1.41", "28.5": "1.51"}[engine]
    assert snapshot.engine["Version"].startswith(f"{engine}.")
    assert snapshot.engine["ApiVersion"] == snapshot.engine["NegotiatedApiVersion"] == api


@pytest.mark.parametrize("rubric", ["docker-links", "docker-networks"])
def test_empty_daemon_scores_close_to_zero(daemon: BenchDaemon, tmp_path: Path, rubric: str) -> None:
    code, report = grade(daemon, rubric, tmp_path)
    assert code == 1
    passed = [c["id"] for c in report["checks"] if c["passed"]]
    # Only "Docker sets no link variables / no hosts entry" style facts could hold; none do
    # without the network, so nothing passes.
    assert passed == []
    assert report["score"] == 0


MISTAKES = {
    # docs/labs.md: "a typo in a network name (backend_network)"
    "network-typo": (
        "docker-networks",
        labs.replace("backend-network", "backend_network"),
        {
            "backend-network": "failed",
            "redis-on-backend": "blocked",
            "env-ran": "failed",
            "no-link-env": "blocked",
            "no-hosts-entry": "blocked",
            "resolv-ran": "failed",
            "embedded-dns": "blocked",
            "ping-ran": "failed",
            "redis-resolves": "blocked",
            "redis-pong": "blocked",
            "app-stored-hits": "blocked",
        },
        "backend_network",
    ),
    # "the alias on the wrong network": db given on backend-network, none on frontend-network2
    "alias-wrong-network": (
        "docker-networks",
        lambda c: (
            ("run", "-d", "--name=redis", "--net=backend-network", "--network-alias", "db", "redis")
            if c[:2] == ("run", "-d") and "--name=redis" in c
            else ("network", "connect", "frontend-network2", "redis")
            if "--alias" in c
            else c
        ),
        {"redis-alias-db": "failed", "db-resolves": "blocked"},
        "backend-network instead",
    ),
    # "forgetting network connect"
    "forgot-connect": (
        "docker-networks",
        lambda c: None if c[:2] == ("network", "connect") and "db" in c else c,
        {"redis-alias-db": "failed", "db-resolves": "blocked"},
        "docker network connect --alias db frontend-network2 redis",
    ),
    # "a container named redis that is not a Redis server"
    "redis-not-redis": (
        "docker-networks",
        lambda c: (*c[:-1], "alpine", "sleep", "3600") if "--name=redis" in c else c,
        {"redis-running": "failed", "redis-pong": "failed", "app-stored-hits": "blocked"},
        "not redis",
    ),
    # "a port published on the wrong host port"
    "wrong-host-port": (
        "docker-networks",
        lambda c: ("curl", "8080") if c[0] == "curl" else tuple(a.replace("3000:3000", "8080:3000") for a in c),
        {"app-port": "failed"},
        "-p 3000:3000",
    ),
    # "the app not ... on the network of the data store"
    "app-off-network": (
        "docker-networks",
        lambda c: tuple(a for a in c if a != "--net=frontend-network") if labs.APP in c else c,
        {"app-on-frontend": "failed", "app-stored-hits": "blocked"},
        "docker network connect frontend-network",
    ),
    # "the app not linked"
    "app-not-linked": (
        "docker-links",
        lambda c: tuple(a for a in c if a not in ("--link", "redis-server:redis")) if labs.APP in c else c,
        {"app-link": "failed", "app-counts": "failed"},
        "--link redis-server:redis",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_typical_mistake_loses_exactly_its_checks(daemon: BenchDaemon, tmp_path: Path, mistake: str) -> None:
    rubric, rewrite, broken, hint_part = MISTAKES[mistake]
    labs.play(daemon, labs.LABS[rubric], rewrite=rewrite)
    code, report = grade(daemon, rubric, tmp_path)
    assert code == 1
    assert not_passed(report) == broken
    first = next(c for c in report["checks"] if c["id"] == next(iter(broken)))
    assert hint_part in first["hint"] + first["message"]


@pytest.mark.parametrize("rubric", ["docker-links", "docker-networks"])
def test_redis_stopped(daemon: BenchDaemon, tmp_path: Path, rubric: str) -> None:
    labs.play(daemon, labs.LABS[rubric])
    name = "redis-server" if rubric == "docker-links" else "redis"
    daemon.docker("stop", "-t", "1", name)
    _, report = grade(daemon, rubric, tmp_path)
    running = next(c for c in report["checks"] if c["id"].endswith("running") and c["id"].startswith("redis"))
    assert running["points"] == running["max_points"] / 2
    assert f"docker start {name}" in running["hint"]
    expected = (
        {
            "redis-server-running": "failed",
            "redis-server-pong": "blocked",
            "link-env": "blocked",
            "hosts-entry": "blocked",
            "ping-redis": "blocked",
            "app-counts": "blocked",
        }
        if rubric == "docker-links"
        else {
            "redis-running": "failed",
            "redis-resolves": "failed",
            "redis-pong": "failed",
            "app-stored-hits": "blocked",
            "db-resolves": "failed",
        }
    )
    assert not_passed(report) == expected

    # A student reads the computed hint in Indonesian.
    args = ["check", "--rubric", rubric, "--lang", "id", "--format", "json", "--docker-host", daemon.host]
    result = CliRunner().invoke(main, [*args, "--db", f"sqlite:///{tmp_path / 'student.db'}"])
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert f"jalankan lagi: docker start {name}" in checks[running["id"]]["hint"]
    # ... and why a check is blocked.
    waiting, needs = (
        ("redis-server-pong", "redis-server-running") if rubric == "docker-links" else ("app-stored-hits", "redis-pong")
    )
    assert checks[waiting]["message"] == f"terblokir: perlu {needs} dulu"


def test_unreachable_daemon_is_exit_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "grade",
            "--rubric",
            "docker-links",
            "--student",
            "a",
            "--docker-host",
            f"unix://{tmp_path}/none.sock",
            "--db",
            f"sqlite:///{tmp_path}/g.db",
        ],
    )
    assert result.exit_code == 3
    assert result.stderr.startswith("grader: cannot reach the Docker daemon at unix://")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "g.db").exists()  # nothing graded, no empty database left behind


def test_ctrl_c_removes_probe_containers(daemon: BenchDaemon, tmp_path: Path, engine: str) -> None:
    """A lookup of an unknown name takes seconds on the bench (no upstream DNS): interrupt it.
    On the default bridge the container asks the host's resolvers itself and waits on every
    engine; on a user network 20.10's embedded DNS waits too, 28.5's answers SERVFAIL at once
    (tests/userland/resolve.json), so there only the bridge's probe container is sure to run."""
    labs.play(daemon, labs.NETWORKS_LAB, upto=2)
    rubric = tmp_path / "slow.yaml"
    rubric.write_text(
        "id: slow\ntitle: slow\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: a, title: a, resolves: {network: backend-network, name: nowhere}}\n"
        "      - {id: b, title: b, resolves: {network: bridge, name: nowhere-else}}\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            "--rubric",
            str(rubric),
            "--student",
            "a",
            "--docker-host",
            daemon.host,
            "--db",
            f"sqlite:///{tmp_path}/g.db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    probes = lambda: daemon.docker("ps", "-aq", "--filter", "label=grader.probe=1").stdout.split()  # noqa: E731
    running = 2 if engine == "20.10" else 1
    deadline = time.monotonic() + 20
    while len(probes()) < running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(probes()) >= running, "the probe containers (one per kind of network) never started"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert probes() == []


def test_the_probe_container_sees_each_network_alone(networks_lab: BenchDaemon) -> None:
    """One probe container visits backend-network, frontend-network2 and frontend-network in
    turn; on each it resolves names as a container on that network only would. The default
    bridge, where Docker's embedded DNS does not answer, gets a container of its own. (The
    unknown name on frontend-network waits out the probe's timeout on the bench.)"""
    lookups = [
        ("backend-network", "redis"),
        ("frontend-network2", "db"),
        ("frontend-network2", "redis"),
        ("frontend-network", "redis"),
    ]
    specs = [ProbeSpec(action="resolve", origin=Origin(network=n), host=h) for n, h in lookups]
    resolvers = [ProbeSpec(action="resolv", origin=Origin(network=n)) for n in ("backend-network", "bridge")]
    snapshot = collect([*specs, *resolvers], docker_host=networks_lab.host)
    found = {(p.network, p.target): p.data["addresses"] for p in snapshot.probes.values() if p.kind == "resolve"}
    nameservers = {p.network: p.data["nameservers"] for p in snapshot.probes.values() if p.kind == "resolv"}
    # The default bridge has no embedded DNS: a container there uses the host's resolvers.
    assert nameservers["net:backend-network"] == ["127.0.0.11"]
    assert "127.0.0.11" not in nameservers["net:bridge"]
    redis = Selector(name="redis")
    backend = address_of(snapshot, redis, "backend-network")
    frontend2 = address_of(snapshot, redis, "frontend-network2")
    assert backend and frontend2 and backend != frontend2
    assert found == {
        ("net:backend-network", "redis"): [backend],
        ("net:frontend-network2", "db"): [frontend2],
        ("net:frontend-network2", "redis"): [frontend2],
        ("net:frontend-network", "redis"): [],
    }
    assert networks_lab.docker("ps", "-aq", "--filter", "label=grader.probe=1").stdout.strip() == ""


def test_a_socket_the_user_may_not_open_says_why(tmp_path: Path) -> None:
    """A student outside the docker group: the socket refuses them (EACCES), and the message
    says what to do. The check runs in a forked child that has dropped root."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    os.chmod(path, 0o600)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            os.setgid(65534)
            os.setuid(65534)
            connect(f"unix://{path}")
            message = "connected"
        except DaemonUnreachable as exc:
            message = f"{exc.reason}: {exc}"
        except BaseException as exc:  # noqa: BLE001
            message = f"unexpected {exc!r}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    message = os.read(read, 4096).decode()
    server.close()
    assert message == (
        f"unreachable: cannot reach the Docker daemon at unix://{path}: "
        "permission denied (run it as a user in the docker group, or with sudo)"
    )


def test_a_missing_probe_image_is_an_error_never_a_pull(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    """The probe checks cannot be observed: they are errors (not failures) that say what to do,
    the others are graded, and nothing is pulled."""
    before = state(networks_lab)
    code, report = grade(networks_lab, "docker-networks", tmp_path, "--probe-image", "nosuch:1")
    assert code == 1
    probed = {c["id"]: c for c in report["checks"] if c["status"] == "error"}
    assert set(probed) >= {"no-link-env", "embedded-dns", "redis-resolves", "db-resolves"}
    for check in probed.values():
        assert "probe image 'nosuch:1' is not on the daemon" in check["message"]
        assert "docker pull nosuch:1" in check["message"] and check["points"] == 0
    for check in report["checks"]:  # the rest pass, or wait for a check that could not be observed
        if check["status"] == "blocked":
            assert check["message"].removeprefix("blocked: needs ") in probed, check
        else:
            assert check["status"] in ("passed", "error"), check
    assert state(networks_lab) == before
