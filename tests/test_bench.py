"""The bench itself: the labs played on it show the facts docs/labs.md lists."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from bench import images, labs
from bench.daemon import BenchDaemon, sweep_stale
from bench.system import run

pytestmark = pytest.mark.docker


def inspect(daemon: BenchDaemon, *names: str) -> list[dict]:
    return json.loads(daemon.docker("inspect", *names).stdout)


def test_images_are_the_labs_names(daemon: BenchDaemon) -> None:
    tags = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(tags) == [
        "alpine-busybox:latest",
        "alpine:latest",
        "elasticsearch:2",
        "katacoda/redis-node-docker-example:latest",
        "nginx:latest",
        "redis:latest",
    ]


def test_the_engine_is_the_one_asked_for(bench: BenchDaemon, engine: str) -> None:
    version, api = bench.docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}").stdout.split()
    assert version.startswith(f"{engine}.")
    assert api == {"20.10": "1.41", "28.5": "1.51"}[engine]


def test_alpine_busybox_has_only_busybox(daemon: BenchDaemon) -> None:
    """The one program there is busybox; every tool the probe script runs is one of its
    applets, and ``getent`` is not one (a name is looked up with busybox's nslookup)."""
    tools = "sh nslookup wget nc ping timeout head wc mktemp env cat printf sleep"
    listing = f'find / -xdev -type f -perm -u+x -size +0; for t in {tools}; do readlink "$(which $t)"; done'
    found = daemon.docker("run", "--rm", "alpine-busybox", "sh", "-c", f"{listing}; which getent || echo no getent")
    assert found.stdout.splitlines() == ["/bin/busybox"] + ["/bin/busybox"] * len(tools.split()) + ["no getent"]


def test_links_lab_step_by_step(daemon: BenchDaemon) -> None:
    out = labs.play(daemon, labs.LINKS_LAB, upto=1)
    pong = daemon.docker("exec", "redis-server", "redis-cli", "PING").stdout
    assert pong.strip() == "PONG"
    # Deprecated in 28.4, the link variables are still set by default on 28.5 (not from 29.0).
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


@pytest.mark.engines("20.10")
def test_aliases_hold_the_short_id_below_api_1_45(networks_lab: BenchDaemon) -> None:
    (redis,) = inspect(networks_lab, "redis")
    endpoint = redis["NetworkSettings"]["Networks"]["frontend-network2"]
    assert endpoint["Aliases"] == ["db", redis["Id"][:12]]
    assert "DNSNames" not in endpoint  # API 1.44 adds them


@pytest.mark.engines("28.5")
def test_aliases_are_the_given_ones_and_dns_names_every_name(networks_lab: BenchDaemon) -> None:
    (redis,) = inspect(networks_lab, "redis")
    endpoint = redis["NetworkSettings"]["Networks"]["frontend-network2"]
    assert endpoint["Aliases"] == ["db"]
    assert endpoint["DNSNames"] == ["redis", "db", redis["Id"][:12]]


def test_networks_lab_final_state(networks_lab: BenchDaemon) -> None:
    (redis,) = inspect(networks_lab, "redis")
    nets = redis["NetworkSettings"]["Networks"]
    assert sorted(nets) == ["backend-network", "frontend-network2"]
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


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed process stays one until its parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_killed_run_is_cleaned_up_by_the_next_start(bench: BenchDaemon, engine: str) -> None:
    """A run killed outright leaves its dockerd, containerd, a running container, mounts, the
    namespace and the data root; the next start anywhere removes them all, as the process that
    started that daemon is gone, and spares the daemons of live sessions."""
    killed = BenchDaemon(f"k{os.getpid()}-{engine}", engine=engine).start()
    try:
        images.load_images(killed, images.images_tar(killed))
        killed.docker("run", "-d", "--name", "left", "redis")
        left = [int(pid) for pid in run("ip", "netns", "pids", killed.netns).stdout.split()]
        assert len(left) >= 3  # dockerd, containerd, a shim, redis
        mounted = mounts_below(killed)
        assert mounted or engine == "28.5"  # 28.5 mounts in a private mount namespace
        gone = subprocess.Popen(["true"])
        gone.wait()
        killed.owner_file.write_text(str(gone.pid))  # the owner died
        os.kill(int(killed.pidfile.read_text()), signal.SIGKILL)

        sweep_stale()

        assert [pid for pid in left if running(pid)] == []
        assert mounts_below(killed) == []
        assert not Path(killed.netns_path).exists() and not killed.run_dir.exists()
        assert not killed.data_root.exists() and not killed.owner_file.exists()
        assert bench.docker("version").returncode == 0  # this live session's daemon is spared
    finally:
        killed.stop()


def mounts_below(daemon: BenchDaemon) -> list[str]:
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [m for m in mounts if m.startswith((f"{daemon.data_root}/", f"{daemon.run_dir}/"))]
