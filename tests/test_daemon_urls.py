"""Daemon URLs: a URL that names no daemon is refused in one line (exit 2), and nothing falls back
to the machine's own daemon unless no URL was given at all. `unix://` alone is read by the docker
SDK as /var/run/docker.sock: a roster row with it graded the instructor's machine, and
`rubric test --docker-host unix://` played its cases there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.daemon import BenchDaemon

from grader.collect import check_host, connect
from grader.errors import UsageError

NO_SOCKET = "names no socket path: write unix:///ABSOLUTE/PATH"


def grader(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    command = [*prefix, sys.executable, "-m", "grader.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("unix://", f"docker host 'unix://' {NO_SOCKET}"),
        ("unix:// ", f"docker host 'unix:// ' {NO_SOCKET}"),
        ("unix:///", f"docker host 'unix:///' {NO_SOCKET}"),
        ("unix://var/run/docker.sock", f"docker host 'unix://var/run/docker.sock' {NO_SOCKET}"),
        ("", "docker host '' must start with unix://, tcp://, ssh://"),
        ("tcp://[::1", "docker host 'tcp://[::1' is malformed: Invalid IPv6 URL"),
    ],
)
def test_a_url_that_names_no_daemon_is_refused(url: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_host(url, tls=False)
    assert str(refused.value) == message
    with pytest.raises(UsageError) as refused:
        connect(url)  # given, even empty: never the daemon DOCKER_HOST or the local socket names
    assert str(refused.value) == message
    check_host("unix:///run/user/1000/docker.sock", tls=False)  # a socket path is one


def test_an_empty_socket_path_in_the_environment_is_refused() -> None:
    done = grader("grade", "--rubric", "docker-networks", "--student", "s", env={"DOCKER_HOST": "unix://"})
    assert done.returncode == 2 and done.stderr == f"grader: docker host 'unix://' {NO_SOCKET}\n"


@pytest.mark.parametrize("url", ["unix://", "", "tcp://[::1"])
def test_grade_batch_and_rubric_test_refuse_it_in_one_line(url: str, tmp_path: Path) -> None:
    """`rubric test --docker-host 'tcp://[::1'` was a ValueError traceback where `grade` exits 2;
    a roster row's URL is refused with its line, before anything is stored."""
    db = f"sqlite:///{tmp_path / 'g.db'}"
    roster = tmp_path / "class.csv"
    roster.write_text(f"student,docker_host\nani,unix:///ani.sock\nbudi,{url}\n")
    runs = {
        "grade": grader("grade", "--rubric", "docker-networks", "--student", "s", "--docker-host", url, "--db", db),
        "rubric test": grader("rubric", "test", "docker-networks", "--docker-host", url),
        "batch": grader("batch", "--rubric", "docker-networks", str(roster), "--db", db),
    }
    said = str(pytest.raises(UsageError, check_host, url, False).value)
    for command, done in runs.items():
        where = f"{roster}:3: " if command == "batch" else ""
        assert (done.returncode, done.stderr) == (2, f"grader: {where}{said}\n"), command
    assert not (tmp_path / "g.db").exists()


@pytest.mark.docker
def test_rubric_test_never_touches_a_daemon_in_use(daemon: BenchDaemon, tmp_path: Path) -> None:
    """A daemon holding a container and a network is refused before anything is removed, named
    (--docker-host) or reached as the local daemon through `unix://`, which today's SDK reads as
    /var/run/docker.sock (here the bench daemon, bound there in a mount namespace of its own)."""
    daemon.docker("network", "create", "someone-elses")
    daemon.docker("run", "-d", "--name", "someones-redis", "--net", "someone-elses", "redis")
    # The socket is bound to a file of the test's first, then over /run's private tmpfs.
    held = tmp_path / "docker.sock"
    as_local = (
        f"touch {held} && mount --bind {daemon.socket} {held} && mount -t tmpfs tmpfs /run"
        f" && touch /run/docker.sock && mount --bind {held} /run/docker.sock"
    )
    local = grader(
        "rubric", "test", "docker-networks", "--docker-host", "unix://",
        prefix=("unshare", "--mount", "sh", "-c", f'{as_local} && exec "$@"', "-"),
    )  # fmt: skip
    assert (local.returncode, local.stderr) == (2, f"grader: docker host 'unix://' {NO_SOCKET}\n")
    named = grader("rubric", "test", "docker-networks", "--docker-host", daemon.host)
    assert named.returncode == 2 and "holds 1 containers and 1 user networks" in named.stderr
    assert named.stderr.count("\n") == 1, named.stderr
    survivors = daemon.docker("ps", "--format", "{{.Names}} {{.State}}").stdout.split("\n")
    assert survivors[0] == "someones-redis running"
    assert daemon.docker("network", "ls", "-q", "--filter", "name=someone-elses").stdout.strip()
