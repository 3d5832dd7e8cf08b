"""Batch grading on the bench: several private daemons, each in its own network namespace,
as a class of student machines in different lab states and on both engines (20.10 and 28.5),
plus a dead one and one that accepts connections and never answers. Scale-out workers share
a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from bench import labs
from bench.daemon import BenchDaemon
from bench.sshd import BenchSSH
from bench.tls import TlsFiles, make_tls
from conftest import start_daemon

from grader.errors import UsageError
from grader.roster import Target, read_roster
from grader.store import Attempt, Store

RUBRIC = "docker-networks"
FORGOT_CONNECT = {"redis-alias-db": "failed", "db-resolves": "blocked"}
NOT_GRADED = object()  # a student a test leaves out of its roster


class Blackhole:
    """A TCP port on loopback that accepts connections and never answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


class SlowProxy:
    """A TCP port on loopback in front of a daemon's socket that delays every answer."""

    def __init__(self, unix_socket: str, delay: float) -> None:
        self.path, self.delay = unix_socket, delay
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.path)
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """student -> roster row: a finished lab (on 28.5), a lab with a typical mistake (on 20.10),
    a dead daemon, a daemon that never answers, a half-done lab reached over TCP with TLS (on
    28.5), the same daemon with a client certificate it does not trust, the same daemon again
    over ssh, and once more with a good client certificate but a CA that did not sign the
    daemon's."""
    done = start_daemon(f"c1{os.getpid()}", engine="28.5")
    mistake = start_daemon(f"c2{os.getpid()}", engine="20.10")
    remote = start_daemon(f"c3{os.getpid()}", tls=True, engine="28.5")
    labs.play(done, labs.NETWORKS_LAB)
    forgot_connect = lambda c: None if c[:2] == ("network", "connect") and "db" in c else c  # noqa: E731
    labs.play(mistake, labs.NETWORKS_LAB, rewrite=forgot_connect)
    labs.play(remote, labs.NETWORKS_LAB, upto=2)
    stranger = make_tls(tmp_path_factory.mktemp("stranger"), str(remote.address))
    hole = Blackhole()
    ssh = BenchSSH(remote).start()
    path = pytest.MonkeyPatch()
    path.setenv("PATH", f"{ssh.client_path}:{os.environ['PATH']}")  # the instructor's ssh, configured
    yield {
        "ani": done.host,
        "budi": mistake.host,
        "citra": "unix:///run/grader-bench/nobody-here.sock",
        "dewi": hole.host,
        "eko": tls_row(remote.tcp_host, remote.tls_files),
        "fajar": tls_row(remote.tcp_host, stranger),
        "gita": ssh.host,
        "ida": f"{remote.tcp_host},{stranger.ca},{remote.tls_files.client_cert},{remote.tls_files.client_key}",
    }
    path.undo()
    ssh.stop()
    hole.close()
    for daemon in (done, mistake, remote):
        assert probe_containers(daemon) == ""


def tls_row(host: str, files: TlsFiles) -> str:
    return f"{host},{files.ca},{files.client_cert},{files.client_key}"


def probe_containers(daemon: BenchDaemon) -> str:
    return daemon.docker("ps", "-aq", "--filter", "label=grader.probe=1").stdout.strip()


def write_roster(path: Path, rows: dict[str, str]) -> Path:
    path.write_text("student,docker_host,tls_ca,tls_cert,tls_key\n" + "".join(f"{s},{r}\n" for s, r in rows.items()))
    return path


def batch(roster: Path, db: str, *args: str, wait: bool = True) -> subprocess.Popen[str]:
    # --insecure-tcp: the stand-ins for lost daemons (Blackhole, SlowProxy) are plain TCP on loopback.
    cmd = [sys.executable, "-m", "grader.cli", "batch", str(roster), "--rubric", RUBRIC, "--db", db, "--insecure-tcp"]
    cmd += args
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        proc.wait(timeout=300)
    return proc


def by_student(db: str) -> dict[str, list[Attempt]]:
    found: dict[str, list[Attempt]] = {}
    for attempt in Store(db).attempts(RUBRIC):
        found.setdefault(attempt.student, []).append(attempt)
    return found


def assert_class_outcomes(attempts: dict[str, list[Attempt]]) -> None:
    students = ("ani", "budi", "citra", "dewi", "eko", "fajar", "gita", "ida")
    [ani], [budi], [citra], [dewi], [eko], [fajar], [gita], [ida] = (attempts.get(s, [NOT_GRADED]) for s in students)
    assert dewi is NOT_GRADED or (not dewi.ok and "timed out" in dewi.error)
    assert ani.ok and ani.score == ani.max_score > 0
    assert budi.ok and {c.id: c.status for c in budi.checks if not c.passed} == FORGOT_CONNECT
    assert not citra.ok and "cannot reach the Docker daemon" in citra.error and citra.snapshot_digest is None
    assert eko.ok and 0 < eko.score < eko.max_score and eko.checks[0].passed  # networks made, nothing attached
    assert not fajar.ok and "TLS refused" in fajar.error
    assert gita.ok and gita.checks == eko.checks  # the same daemon, over ssh
    assert not ida.ok and "TLS refused" in ida.error and "CERTIFICATE_VERIFY_FAILED" in ida.error  # server checked


@pytest.mark.docker
def test_batch_grades_every_daemon_and_keeps_going(classroom: dict[str, str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    roster = write_roster(tmp_path / "class.csv", classroom)
    # Every daemon that answers is graded with the product's own --timeout, so a slow but working
    # daemon on a busy machine is never cut short; the one that never answers is graded alone
    # with a short one, which is all it can take.
    answering = {student: row for student, row in classroom.items() if student != "dewi"}

    proc = batch(write_roster(tmp_path / "answering.csv", answering), db, "--workers", "4")
    out, err = proc.communicate()
    lost = batch(write_roster(tmp_path / "lost.csv", {"dewi": classroom["dewi"]}), db, "--timeout", "3")

    assert proc.returncode == 1, err  # three daemons could not be graded
    assert "graded 4 of 7 daemons" in err and "Warning" not in err, out
    for student in answering:
        assert student in out
    assert lost.returncode == 1, lost.stderr.read()
    assert_class_outcomes(by_student(db))
    store = Store(db)
    engines = {
        student: store.snapshot(attempt.snapshot_digest).engine["Version"].split("+")[0].rsplit(".", 1)[0]
        for student, [attempt] in by_student(db).items()
        if attempt.snapshot_digest
    }
    assert engines == {"ani": "28.5", "budi": "20.10", "eko": "28.5", "gita": "28.5"}

    again = batch(roster, db, "--only-failed", "--timeout", "10")  # the failed ones fail at once, or never answer
    assert again.returncode == 1
    counts = {s: len(a) for s, a in by_student(db).items()}
    assert counts == {"ani": 1, "budi": 1, "citra": 2, "dewi": 2, "eko": 1, "fajar": 2, "gita": 1, "ida": 2}


def test_roster_errors_are_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    bad = tmp_path / "bad.csv"
    for text, message in [
        ("name,host\nani,unix:///x\n", "missing column(s) student, docker_host"),
        ("student,docker_host\nani,unix:///x\nani,unix:///y\n", "bad.csv:3: student 'ani' is listed twice"),
        ("student,docker_host\nani,http://x\n", "bad.csv:2: docker host 'http://x' must start with"),
        ("student,docker_host\nani,tcp://[::1\n", "bad.csv:2: docker host 'tcp://[::1' is malformed"),
        ("student,docker_host\nani,tcp://x:99999\n", "bad.csv:2: docker host 'tcp://x:99999' is malformed"),
        ("student,docker_host,tls_ca\nani,tcp://x:2376,ca.pem\n", "give all of tls_ca, tls_cert and tls_key"),
    ]:
        bad.write_text(text)
        proc = batch(bad, db)
        _, err = proc.communicate()
        assert proc.returncode == 2 and message in err and "Traceback" not in err, err
        assert err.startswith("grader: ") and not (tmp_path / "class.db").exists()  # nothing made for a bad roster


def test_plain_tcp_is_refused_unless_asked_for(tmp_path: Path) -> None:
    """Plain TCP to a Docker daemon gives anyone on the way root on that machine."""
    roster = tmp_path / "class.csv"
    roster.write_text("student,docker_host\nani,tcp://pc-07:2375\n")
    with pytest.raises(
        UsageError, match=r"class.csv:2: docker host tcp://pc-07:2375 without TLS: .* or --insecure-tcp"
    ):
        read_roster(roster)
    assert read_roster(roster, insecure_tcp=True) == [Target("ani", "tcp://pc-07:2375", None)]


def test_roster_as_spreadsheets_save_it(tmp_path: Path) -> None:
    """Excel in a comma-decimal locale (Indonesia's) saves CSV with semicolons, a BOM and CRLF."""
    roster = tmp_path / "class.csv"
    for separator in (",", ";", "\t"):
        rows = ["student", "docker_host"], ["ani", "unix:///ani.sock"], ["budi", "ssh://budi@pc-07"]
        roster.write_bytes(b"\xef\xbb\xbf" + "".join(separator.join(r) + "\r\n" for r in rows).encode())
        assert read_roster(roster) == [
            Target("ani", "unix:///ani.sock", None),
            Target("budi", "ssh://budi@pc-07", None),
        ], separator


@pytest.mark.docker
def test_workers_share_one_postgresql(classroom: dict[str, str], tmp_path: Path, pg_url: str) -> None:
    answering = {student: row for student, row in classroom.items() if student != "dewi"}  # default --timeout
    roster = write_roster(tmp_path / "class.csv", answering)
    workers = [batch(roster, pg_url, "--worker", "--workers", "2", wait=False) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]

    attempts = by_student(pg_url)
    assert_class_outcomes(attempts)  # exactly one attempt each: nobody graded twice
    shares = [sum(student in out for student in answering) for out, _ in outputs]
    assert sum(shares) == len(answering), outputs
    [batch_id] = {
        line.split()[1].rstrip(":") for _, err in outputs for line in err.splitlines() if line.startswith("batch ")
    }
    assert set(Store(pg_url).jobs(batch_id).values()) == {"done"}


@pytest.mark.docker
def test_a_worker_that_dies_releases_its_student(classroom: dict[str, str], tmp_path: Path, pg_url: str) -> None:
    hole = Blackhole()
    roster = write_roster(tmp_path / "class.csv", {"dewi": hole.host, "ani": classroom["ani"]})
    first = batch(roster, pg_url, "--worker", "--workers", "1", "--timeout", "60", wait=False)
    assert hole.connected.wait(60), first.stderr.read()  # it has claimed dewi and waits on the daemon
    first.kill()
    first.wait()

    second = batch(roster, pg_url, "--worker", "--workers", "1", "--timeout", "8")
    assert second.returncode == 1, second.stderr.read()
    attempts = by_student(pg_url)
    assert [a.ok for a in attempts["dewi"]] == [False] and "timed out" in attempts["dewi"][0].error
    assert [a.ok for a in attempts["ani"]] == [True]
    hole.close()


@pytest.mark.docker
def test_ctrl_c_keeps_what_was_stored(classroom: dict[str, str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    hole = Blackhole()
    students = {"dewi": hole.host, "ani": classroom["ani"], "budi": classroom["budi"]}
    roster = write_roster(tmp_path / "class.csv", students)
    proc = batch(roster, db, "--workers", "2", "--timeout", "10", wait=False)
    assert hole.connected.wait(60)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    stored = by_student(db)
    assert [a.ok for a in stored["ani"]] == [True]  # in progress when Ctrl-C came: finished and kept
    assert [a.ok for a in stored.get("budi", [])] in ([], [True])  # not started, or finished before Ctrl-C
    hole.close()


@pytest.mark.docker
def test_a_slow_daemon_is_given_up_as_a_whole(classroom: dict[str, str], tmp_path: Path) -> None:
    """Every call answers within --timeout, but grading the daemon takes longer: it is a
    timeout, and the probe containers it had started are still removed."""
    slow = SlowProxy(classroom["ani"].removeprefix("unix://"), delay=0.5)
    db = f"sqlite:///{tmp_path / 'class.db'}"
    proc = batch(write_roster(tmp_path / "class.csv", {"hana": slow.host}), db, "--timeout", "3")
    _, err = proc.communicate()

    assert proc.returncode == 1, err
    [hana] = by_student(db)["hana"]
    assert not hana.ok and "timed out: not graded within 3 s" in hana.error
    client = docker.DockerClient(base_url=classroom["ani"])
    assert client.containers.list(all=True, filters={"label": "grader.probe=1"}) == []
    slow.close()
