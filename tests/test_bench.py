"""The bench itself: the labs played on it show the facts docs/labs.md lists."""

from __future__ import annotations

import json
import re

import pytest
from bench import labs
from bench.daemon import BenchDaemon

pytestmark = pytest.mark.docker


def inspect(daemon: BenchDaemon, *names: str) -> list[dict]:
    return json.loads(daemon.docker("inspect", *names).stdout)


def test_images_are_the_labs_names(daemon: BenchDaemon) -> None:
    tags = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(tags) == [
        "alpine:latest",
        "katacoda/redis-node-docker-example:latest",
        "redis:latest",
    ]


def test_links_lab_step_by_step(daemon: BenchDaemon) -> None:
    out = labs.play(daemon, labs.LINKS_LAB, upto=1)
    pong = daemon.docker("exec", "redis-server", "redis-cli", "PING").stdout
    assert pong.strip() == "PONG"
    env = labs.play(daemon, labs.LINKS_LAB[1:2])[0]
    assert re.search(r"^REDIS_PORT=tcp://[\d.]+:6379$", env, re.M)
    assert "REDIS_PORT_6379_TCP_ADDR=" in env
    assert re.search(r"^REDIS_NAME=/\w+/redis$", env, re.M)
    hosts = labs.play(daemon, labs.LINKS_LAB[2:3])[0]
    assert re.search(r"^[\d.]+\tredis \w{12} redis-server$", hosts, re.M)
    ping = labs.play(daemon, labs.LINKS_LAB[3:4])[0]
    assert "1 packets received" in ping
    assert out  # the container id of `docker run -d`


def test_links_lab_final_state(links_lab: BenchDaemon) -> None:
    first = int(labs.http_get(links_lab).split(": ")[1])
    second = int(labs.http_get(links_lab).split(": ")[1])
    assert first >= 2 and second == first + 1  # the lab itself made one request
    app = links_lab.docker("ps", "-q", "--filter", f"ancestor={labs.APP}").stdout.split()
    (info,) = inspect(links_lab, *app)
    assert info["HostConfig"]["Links"] == [f"/redis-server:{info['Name']}/redis"]
    assert info["HostConfig"]["PortBindings"] == {"3000/tcp": [{"HostIp": "", "HostPort": "3000"}]}


def test_networks_lab_final_state(networks_lab: BenchDaemon) -> None:
    (redis,) = inspect(networks_lab, "redis")
    nets = redis["NetworkSettings"]["Networks"]
    assert sorted(nets) == ["backend-network", "frontend-network2"]
    assert "db" in nets["frontend-network2"]["Aliases"]
    resolved = networks_lab.docker(
        "run", "--rm", "--net=backend-network", "alpine", "getent", "hosts", "redis"
    ).stdout.split()[0]
    assert resolved == nets["backend-network"]["IPAddress"]
    db = networks_lab.docker("run", "--rm", "--net=frontend-network2", "alpine", "getent", "hosts", "db")
    assert db.stdout.split()[0] == nets["frontend-network2"]["IPAddress"]
    resolv = networks_lab.docker("run", "--rm", "--net=backend-network", "alpine", "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in resolv.stdout
    env = networks_lab.docker("run", "--rm", "--net=backend-network", "alpine", "env").stdout
    assert "REDIS_PORT" not in env


def test_networks_lab_counter_rises_before_disconnect(daemon: BenchDaemon) -> None:
    labs.play(daemon, labs.NETWORKS_LAB, upto=6)
    first = int(labs.http_get(daemon).split(": ")[1])
    assert int(labs.http_get(daemon).split(": ")[1]) == first + 1
    labs.play(daemon, labs.NETWORKS_LAB[6:])
    assert (
        "Redis error"
        in daemon.nsenter(
            "python3",
            "-c",
            "import urllib.request as u\ntry: u.urlopen('http://127.0.0.1:3000/', timeout=30)\n"
            "except Exception as e: print(e.read().decode())",
        ).stdout
    )


def test_reset_leaves_a_clean_daemon(links_lab: BenchDaemon) -> None:
    links_lab.reset()
    assert links_lab.docker("ps", "-aq").stdout == ""
    nets = links_lab.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert sorted(nets) == ["bridge", "host", "none"]
