"""``grader serve``, the live class, over real HTTP on the loopback: bundles of recorded daemons
(tests/golden) sealed with the students' keys; abuse answered with the right status and one
line; the dashboard behind the instructor's login, live in Chromium; the students' queue
survives a server killed and started again. The lab played under ``check --watch --server``
on the bench is in test_serve_e2e.py."""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser
from starlette.types import ASGIApp
from test_imports import DAEMON_SIDE

from grader.bundle import encoded, sealed
from grader.evaluate import evaluate
from grader.grading import Graded
from grader.keys import secret, student_key
from grader.outbox import Outbox
from grader.rubric import load
from grader.rubric.model import Rubric
from grader.serve import build
from grader.snapshot import Snapshot
from grader.store import Store

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent
TOKEN = "instructor-token-for-tests"
XSS = "<script>window.__xss = 1</script>"
STUDENTS = ["ani", "budi", XSS]


def graded(
    student: str,
    case: str = "networks-typo",
    at: datetime | None = None,
    network: str | None = None,
    rubric: Rubric | None = None,
) -> Graded:
    """A recorded daemon graded for ``student`` (with docker-networks unless ``rubric``); ``at``
    makes it a new snapshot (another moment), ``network`` renames its first network (the
    student's text)."""
    rubric = rubric or load("docker-networks")
    snapshot = Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())
    update: dict = {}
    if at is not None:
        update["taken_at"] = at.isoformat()
    if network is not None:
        networks = [dict(n) for n in snapshot.networks]
        networks[0]["Name"] = network
        update["networks"] = networks
    snapshot = snapshot.model_copy(update=update).sealed()
    return Graded(student, rubric, snapshot, evaluate(rubric, snapshot), snapshot.taken_at)


@dataclass
class Class:
    url: str
    db_url: str
    keys: dict[str, str]
    secret: Path
    folder: Path
    app: Any = None

    def bundle(self, student: str, key_of: str | None = None, **how) -> bytes:
        return encoded(sealed(graded(student, **how), self.keys[key_of or student]), packed=True)

    def post(self, data: bytes, student: str, client: httpx.Client | None = None) -> httpx.Response:
        headers = {"X-Grader-Student": quote(student, safe="")}
        return (client or httpx).post(f"{self.url}/api/v1/submissions", content=data, headers=headers)

    def attempts(self) -> int:
        return len(Store(self.db_url).attempts(checks=False))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def course(tmp_path: Path, students: list[str] = STUDENTS) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "course.key"
    value = secret(path, create=True)[0]
    return path, {name: student_key(value, name) for name in students}


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` on a loopback port, in this process (its log lines reach caplog); yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def live_class(tmp_path: Path, workers: int = 0) -> Iterator[Class]:
    """``grader serve``'s app on a loopback port, in this process, bundles checked in its
    threads or in ``workers`` processes."""
    secret_file, keys = course(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'class.db'}"
    app = build(
        db_url=db_url,
        students=STUDENTS,
        secret=secret_file,
        rubric_refs=["docker-networks"],
        token=TOKEN,
        stuck_after=timedelta(minutes=10),
        workers=workers,
    )
    with serving(app) as url:
        yield Class(url, db_url, keys, secret_file, tmp_path, app)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Class]:
    with live_class(tmp_path) as one:
        yield one


def logged_in() -> httpx.Client:
    return httpx.Client(follow_redirects=False, timeout=10)


def login(live: Class, client: httpx.Client, token: str = TOKEN) -> httpx.Response:
    form = client.get(f"{live.url}/login")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    return client.post(f"{live.url}/login", data={"token": token, "csrf": csrf})


# -- submissions ------------------------------------------------------------------------------


def test_a_sealed_bundle_is_stored_once_and_scored_by_the_server(live: Class) -> None:
    data = live.bundle("ani")
    first = live.post(data, "ani")
    assert first.status_code == 200, first.text
    assert first.json() == {"state": "stored", "attempt": 1, "student": "ani", "score": 12.0, "max_score": 25.5}
    again = live.post(data, "ani")  # a replay
    assert (again.status_code, again.json()["state"]) == (200, "skipped")
    (attempt,) = Store(live.db_url).attempts()
    assert (attempt.source, attempt.identity, attempt.score) == ("live", "verified", 12.0)


def sent_at_once(live: Class, bundles: list[tuple[bytes, str]]) -> list[httpx.Response]:
    """``bundles`` (data, student) posted all at once: the server stores them in a few batches."""
    with ThreadPoolExecutor(len(bundles)) as pool:
        return list(pool.map(lambda sent: live.post(*sent), bundles))


def test_bundles_sent_at_once_are_each_stored_once_and_answered_after_their_commit(live: Class) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    bundles = [(live.bundle(name, at=start + timedelta(seconds=i)), name) for name in ("ani", "budi") for i in range(8)]
    answers = sent_at_once(live, [*bundles, bundles[0]])  # ani's first twice, at once
    states = sorted(a.json()["state"] for a in answers)
    assert states == ["skipped"] + ["stored"] * 16
    stored = {a.json()["attempt"] for a in answers if a.json()["state"] == "stored"}
    assert stored == {a.id for a in Store(live.db_url).attempts(checks=False)}  # each answered stored is there
    assert live.attempts() == 16


def test_a_batch_that_cannot_be_committed_answers_each_of_its_posts_503(
    live: Class, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "grader.serve")
    database = sqlite3.connect(live.db_url.removeprefix("sqlite:///"))
    refuse = """CREATE TRIGGER refuse BEFORE INSERT ON attempts
        WHEN NEW.student_id = (SELECT id FROM students WHERE name = 'budi')
        BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"""
    database.execute(refuse)
    database.commit()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    bundles = [(live.bundle(name, at=start + timedelta(seconds=i)), name) for name in ("ani", "budi") for i in range(4)]
    answers = sent_at_once(live, bundles)
    failed = [(sent, a) for sent, a in zip(bundles, answers, strict=True) if a.status_code != 200]
    assert {a.status_code for _, a in failed} == {503}
    assert {a.json()["why"] for _, a in failed} == {"the server could not store it now; it is sent again later"}
    assert sum(name == "budi" for (_, name), _ in failed) == 4  # none of budi's is stored, nor answered stored
    stored = {a.json()["attempt"] for a in answers if a.status_code == 200}
    assert stored == {a.id for a in Store(live.db_url).attempts(checks=False)}  # a whole batch fails: nothing half
    assert all("cannot store a submission: cannot store the attempts" in r.getMessage() for r in caplog.records)
    database.execute("DROP TRIGGER refuse")
    database.commit()
    again = sent_at_once(live, [sent for sent, _ in failed])  # their queues send them again
    assert {a.json()["state"] for a in again} == {"stored"}
    assert live.attempts() == 8


def test_the_bundles_own_scores_are_never_used(live: Class) -> None:
    body = json.loads(gzip.decompress(live.bundle("ani")))
    for check in body["outcome"]["checks"]:
        check["status"], check["points"] = "passed", check["max_points"]
    # The outcome is part of the sealed digest: an edited one is refused, never believed.
    answer = live.post(json.dumps(body).encode(), "ani")
    assert (answer.status_code, answer.json()["state"]) == (400, "refused")
    assert live.attempts() == 0


def test_a_forged_key_is_refused_403_and_logged_in_one_line(live: Class, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "grader.serve")
    answer = live.post(live.bundle("ani", key_of="budi"), "ani")
    assert answer.status_code == 403
    assert answer.json() == {
        "state": "refused",
        "why": "not sealed with ani's key (another student's key, or an edited name)",
    }
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == (
        "403 /api/v1/submissions from 127.0.0.1: not sealed with ani's key (another student's key, or an edited name)"
    )
    assert live.attempts() == 0


def children(pid: int) -> set[int]:
    """The processes ``pid`` started that still run (a server's checking workers)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def workers(pid: int) -> set[int]:
    return {c for c in children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()}


def test_checking_workers_verify_refuse_and_are_replaced_when_one_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # What a worker process checks, the server answers as if it had checked it itself: stored,
    # a forged key 403 and logged, a bad body 400; a worker that ends (killed) is replaced, and
    # the submission it had is answered "busy" (its student's queue sends it again).
    caplog.set_level(logging.WARNING, "grader.serve")
    with live_class(tmp_path, workers=1) as live:
        (worker,) = workers(os.getpid())
        stored = live.post(live.bundle("ani"), "ani")
        assert stored.json() == {"state": "stored", "attempt": 1, "student": "ani", "score": 12.0, "max_score": 25.5}
        forged = live.post(live.bundle("ani", key_of="budi"), "ani")
        assert (forged.status_code, forged.json()["why"]) == (
            403,
            "not sealed with ani's key (another student's key, or an edited name)",
        )
        (line,) = [r.getMessage() for r in caplog.records]
        assert line == f"403 /api/v1/submissions from 127.0.0.1: {forged.json()['why']}"
        garbage = live.post(b"\x1f\x8b" + bytes(100), "ani")
        assert (garbage.status_code, garbage.json()["why"]) == (400, "not a submission bundle (not JSON, or truncated)")

        os.kill(worker, signal.SIGSTOP)  # the next submission waits in it...
        with ThreadPoolExecutor(1) as sending:
            sent = sending.submit(live.post, live.bundle("budi"), "budi")
            deadline = time.monotonic() + 30
            while live.app.state.live.checking.waiting == 0:
                assert time.monotonic() < deadline, "the submission never reached the worker"
                time.sleep(0.01)
            os.kill(worker, signal.SIGKILL)  # ...and it ends under it
            busy = sent.result(timeout=30)
        assert (busy.status_code, busy.json()["why"]) == (503, "the server is busy; it is sent again later")
        (replaced,) = workers(os.getpid())
        assert replaced != worker
        again = live.post(live.bundle("budi"), "budi")
        assert (again.status_code, again.json()["state"]) == (200, "stored")
    assert workers(os.getpid()) == set()  # stopped with the server
    assert live.attempts() == 2


FREEING_IN_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from grader.serve.memory import give_back
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
bundles, kept = [b"x" * 60_000 for _ in range(3000)], [b"y" * 600 for _ in range(3000)]  # a busy spell
del bundles
freed = rss()
print(freed, give_back(), rss())
"""


def test_the_servers_freed_memory_is_given_back(tmp_path: Path) -> None:
    # 180 MB of 60 KB bundles, freed: glibc keeps much of it until the server's minutely trim.
    child = subprocess.run(
        [sys.executable, "-c", FREEING_IN_CHILD, str(Path(__file__).parent.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    freed, given, trimmed = child.stdout.split()
    assert given == "True"
    assert int(freed) - int(trimmed) > 50, child.stdout


def test_a_bundle_sent_under_another_name_or_off_the_roster_is_refused(live: Class) -> None:
    other = live.post(live.bundle("ani"), "budi")
    assert (other.status_code, other.json()["why"]) == (403, "a bundle of ani, sent as budi")
    stranger = live.post(live.bundle("ani"), "mallory")
    assert (stranger.status_code, stranger.json()["why"]) == (403, "mallory is not on this class's roster")
    anonymous = httpx.post(f"{live.url}/api/v1/submissions", content=live.bundle("ani"))
    assert anonymous.status_code == 400
    assert live.attempts() == 0


def test_a_flood_gets_429_before_its_body_is_read(live: Class) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    bundles = [live.bundle("budi", at=start + timedelta(seconds=i)) for i in range(30)]
    with httpx.Client() as client:
        statuses = [live.post(data, "budi", client).status_code for data in bundles]
    assert statuses[:10] == [200] * 10  # the burst
    assert statuses.count(429) >= 10
    assert live.attempts() == statuses.count(200)
    assert live.post(live.bundle("ani"), "ani").status_code == 200  # another student is not held back


def test_a_student_stores_at_most_600_bundles_an_hour() -> None:
    from grader.serve.app import HOURLY, Answer, Limits

    hourly = Limits(*HOURLY, "600 an hour")
    for _ in range(600):
        hourly.take("ani")
    with pytest.raises(Answer, match="at most 600 an hour") as refused:
        hourly.take("ani")
    assert refused.value.status == 429
    hourly.take("budi")


def test_a_student_sends_at_most_so_many_bytes_an_hour(live: Class) -> None:
    # 600 bundles an hour could be 38 GB of 64 MB snapshots: their bytes are counted too. Here a
    # budget of 100,000 bytes: a bundle's snapshot JSON is some 40 KB (8 KB sent), so the third
    # takes it below 0 and the fourth is refused. The server's budget is 200 MB an hour.
    from grader.serve.app import VOLUME, Limits

    assert VOLUME == (200 << 20, (200 << 20) / 3600)
    live.app.state.live.volume = Limits(100_000, 0, "0.1 MB an hour", "bytes")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with httpx.Client() as client:
        answers = [live.post(live.bundle("budi", at=start + timedelta(seconds=i)), "budi", client) for i in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[-1].json()["why"] == "too many bytes from budi: at most 0.1 MB an hour"
    assert live.attempts() == 3
    assert live.post(live.bundle("ani"), "ani").status_code == 200  # another student is not held back


def test_an_oversized_or_garbage_body_is_refused_without_a_trace(live: Class) -> None:
    huge = live.post(os.urandom(1024) * (17 * 1024), "ani")  # 17 MB
    assert huge.status_code == 413 and huge.json()["state"] == "refused"
    bomb = live.post(gzip.compress(b"[" * (80 << 20)), "ani")  # 80 MB once inflated
    assert bomb.status_code == 400 and "more than 64 MB" in bomb.json()["why"]
    for body in (b"", b"{", b"[" * 100_000, b'{"format": "grader-submission", "version": 9}', b"\x1f\x8b\x08garbage"):
        answer = live.post(body, "ani")
        assert answer.status_code == 400, (body[:20], answer.text)
        assert "Traceback" not in answer.text and len(answer.json()["why"].splitlines()) == 1
    assert live.attempts() == 0


def test_a_bundle_from_the_future_is_refused(live: Class) -> None:
    ahead = live.post(live.bundle("ani", at=datetime.now(UTC) + timedelta(hours=1)), "ani")
    assert ahead.status_code == 400 and "after this import" in ahead.json()["why"]


def test_healthz(live: Class) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"ok": True}


# -- the dashboard ----------------------------------------------------------------------------


def test_the_dashboard_needs_the_instructor_token(live: Class) -> None:
    with logged_in() as client:
        assert client.get(f"{live.url}/").status_code == 303
        for token in ("", live.keys["ani"], "wrong"):  # a student's key never opens it
            assert login(live, client, token).status_code == 403
        assert client.get(f"{live.url}/").status_code == 303
        answer = login(live, client)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = client.get(f"{live.url}/")
        assert page.status_code == 200 and "not connected yet" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        # A login form posted from elsewhere has no matching csrf cookie.
        forged = httpx.post(f"{live.url}/login", data={"token": TOKEN, "csrf": "x"}, cookies={"grader_login": "y"})
        assert forged.status_code == 403
        # Logging out needs the form's token too.
        assert client.post(f"{live.url}/logout", data={"csrf": "nope"}).status_code == 403
        assert client.get(f"{live.url}/").status_code == 200


def test_the_report_pages_are_served_under_the_login(live: Class) -> None:
    """The board links the latest attempt's page, which links the student's page, which links
    each attempt: the pages grader report writes, served live."""
    assert live.post(live.bundle("ani"), "ani").status_code == 200
    with logged_in() as client:
        assert client.get(f"{live.url}/attempts/1.html").status_code == 303  # the login first
        login(live, client)
        board = client.get(f"{live.url}/").text
        href = board.split('<tr id="r0s0"><th><a href="')[1].split('"')[0]
        assert href == "attempts/1.html?lang=en"
        attempt = client.get(f"{live.url}/{href}")
        assert attempt.status_code == 200 and "Attempt #1 · ani" in attempt.text
        student_href = attempt.text.split('class="crumbs">')[1].split('<a href="')[2].split('"')[0]
        student = client.get(f"{live.url}/attempts/{student_href}")
        assert student.status_code == 200 and 'href="../attempts/1.html"' in student.text
        assert client.get(f"{live.url}/students/nobody.html").status_code == 404
        assert client.get(f"{live.url}/attempts/99.html").status_code == 404


def test_the_dashboard_is_in_indonesian(live: Class) -> None:
    with logged_in() as client:
        login(live, client)
        page = client.get(f"{live.url}/?lang=id")
        assert 'lang="id"' in page.text and "belum terhubung" in page.text


def test_results_code_never_loads_docker(tmp_path: Path) -> None:
    """Serving submissions, the dashboard and an attempt's page never loads the daemon's side."""
    secret_file, keys = course(tmp_path)
    live = Class("http://t", "", keys, secret_file, tmp_path)
    (tmp_path / "ani.json.gz").write_bytes(live.bundle("ani"))
    script = f"""
import sys, asyncio, httpx
already = set(sys.modules)  # the test's own client (httpx loads rich)
from datetime import timedelta
from pathlib import Path
from grader.serve import build
tmp = Path({str(tmp_path)!r})
app = build(db_url="sqlite:///" + str(tmp / "c.db"), students=["ani"], secret=tmp / "course.key",
            rubric_refs=["docker-networks"], token={TOKEN!r}, stuck_after=timedelta(minutes=1))
async def main():
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            data = (tmp / "ani.json.gz").read_bytes()
            r = await c.post("/api/v1/submissions", content=data, headers={{"X-Grader-Student": "ani"}})
            assert r.status_code == 200, r.text
            form = await c.get("/login")
            csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
            await c.post("/login", data={{"token": {TOKEN!r}, "csrf": csrf}})
            assert (await c.get("/")).status_code == 200
            assert (await c.get("/attempts/1")).status_code == 200
asyncio.run(main())
print(sorted(m for m in {[*DAEMON_SIDE, "grader.batch"]!r} if m in set(sys.modules) - already))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# -- the students' queue ----------------------------------------------------------------------


def start_serve(
    tmp_path: Path, port: int, db_url: str, secret_file: Path, students: list[str] = STUDENTS[:2]
) -> subprocess.Popen[bytes]:
    roster = tmp_path / "roster.csv"
    roster.write_text("student\n" + "\n".join(f'"{n}"' for n in students) + "\n")
    token = tmp_path / "token"
    token.write_text(TOKEN)
    command = [sys.executable, "-m", "grader.cli", "serve", "--db", db_url, "--roster", str(roster)]
    command += ["--secret", str(secret_file), "--bind", f"127.0.0.1:{port}", "--token-file", str(token)]
    command += ["--workers", "1"]  # bundles checked in a worker process, as on a machine of 2 cores or more
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            assert time.monotonic() < deadline and server.poll() is None, server.stderr and server.stderr.read()
            time.sleep(0.1)


def test_a_killed_server_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    secret_file, keys = course(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'class.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    boxes = {n: Outbox(url, n, keys[n], folder=(tmp_path / n)) for n in ("ani", "budi")}
    for box in boxes.values():
        box.folder.mkdir()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    server = start_serve(tmp_path, port, db_url, secret_file)
    sent = 0
    try:
        for i in range(12):
            if i == 4:  # killed mid-lab: what follows is queued
                checking = workers(server.pid)
                assert checking
                server.send_signal(signal.SIGKILL)
                server.wait()
                deadline = time.monotonic() + 5
                while any(Path(f"/proc/{pid}").exists() for pid in checking):  # they end with it
                    assert time.monotonic() < deadline, checking
                    time.sleep(0.05)
            if i == 8:
                server = start_serve(tmp_path, port, db_url, secret_file)
            for name, box in boxes.items():
                box.put(graded(name, at=start + timedelta(minutes=i)))
                state = box.flush()
                sent += 1
                if 4 <= i < 8:
                    assert state.queued and "cannot reach" in state.failed, state
                    assert state.line().startswith("server: queued")
        # A laptop restarted: a new outbox on the same folder sends what is left, in order.
        for name in boxes:
            again = Outbox(url, name, keys[name], folder=tmp_path / name)
            assert again.deliver().line() == "server: sent" or not again.waiting()
            assert again.waiting() == []
        attempts = Store(db_url).attempts(checks=False)
        assert len(attempts) == sent == 24
        for name in boxes:
            taken = [a.snapshot_digest for a in attempts if a.student == name]
            assert len(set(taken)) == 12  # none twice
            times = sorted(a.graded_at for a in attempts if a.student == name)
            ids = [a.id for a in sorted(attempts, key=lambda a: a.id) if a.student == name]
            assert len(times) == len(ids) == 12
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def test_plain_http_only_to_the_loopback(tmp_path: Path) -> None:
    from grader.errors import UsageError
    from grader.outbox import server_url

    assert server_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert server_url("http://[::1]:8000") == "http://[::1]:8000"
    with pytest.raises(UsageError, match="only for this machine"):
        server_url("http://lab.example.edu:8000")
    assert server_url("http://lab.example.edu:8000", insecure_http=True) == "http://lab.example.edu:8000"
    with pytest.raises(UsageError, match="https:// URL"):
        server_url("ftp://lab.example.edu")


# -- in Chromium ------------------------------------------------------------------------------


# Notes every row the dashboard's script swaps in (``window.__seen``): its key, attempt, score,
# strip, and when (Date.now(): this machine's clock, as Python's time.time()).
OBSERVE = """() => {
  window.__seen = [];
  const number = (row) => { const a = row.querySelector("th a");
    return a ? Number(a.getAttribute("href").split("/")[1].split(".")[0]) : 0; };
  for (const body of document.querySelectorAll("table.live tbody"))
    new MutationObserver((records) => { const at = Date.now();
      for (const r of records) for (const row of r.addedNodes) if (row.id)
        window.__seen.push({key: row.id, attempt: number(row), at,
          score: row.querySelector("td.num").textContent, strip: row.querySelector("td.strip").innerHTML});
    }).observe(body, {childList: true});
}"""


def until(page, expression: str, timeout: float = 5.0) -> None:
    """Poll ``expression`` in the page (playwright's wait_for_function evaluates a string, which
    the dashboard's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"not true in {timeout} s: {expression}"
        time.sleep(0.02)


@pytest.mark.browser
def test_the_board_changes_live_and_escapes_student_text_in_chromium(live: Class, browser: Browser) -> None:
    page = browser.new_page()
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"{live.url}/")
    page.fill("input[name=token]", TOKEN)
    page.click("button")
    page.wait_for_selector("table.live")
    row = page.locator("tr#r0s2")  # the roster's third name
    assert row.locator("th").inner_text() == XSS
    assert "not connected yet" in row.inner_text()
    until(page, "document.body.dataset.changes >= 1")  # the stream's first full board

    # A submission under the <script> name with a <script> network: the row changes live, within
    # a second of the server's answer (the push alone: verifying and scoring come before it).
    page.evaluate(OBSERVE)
    answer = live.post(live.bundle(XSS, network=XSS), XSS)
    answered = time.time()
    assert answer.status_code == 200, answer.text
    scored = "window.__seen.find((s) => s.key === 'r0s2' && s.score.includes('/'))"
    until(page, scored)
    seen = page.evaluate(f"() => {scored}.at") / 1000 - answered
    assert seen < 1.0, f"the row changed {seen:.3f} s after the server's answer"
    assert row.locator("th a").inner_text() == XSS
    assert row.locator(".cell.p").count() >= 1

    row.locator("th a").click()  # the attempt's page, as grader report renders it
    page.wait_for_selector("h1")
    assert XSS in page.inner_text("h1")
    assert XSS in page.content().replace("&lt;", "<").replace("&gt;", ">")
    assert page.evaluate("window.__xss") is None and problems == []


# -- several server processes ---------------------------------------------------------------


@pytest.mark.postgres
def test_a_dashboard_of_one_process_sees_what_another_received(tmp_path: Path, pg_url: str) -> None:
    """Two ``grader serve`` processes share one PostgreSQL: a dashboard served by A gets the row
    of a submission B received (LISTEN/NOTIFY), and B's too."""
    secret_file, keys = course(tmp_path)
    ports = [free_port(), free_port()]
    servers = [start_serve(tmp_path, port, pg_url, secret_file) for port in ports]
    a, b = (Class(f"http://127.0.0.1:{port}", pg_url, keys, secret_file, tmp_path) for port in ports)
    try:
        with logged_in() as client:
            login(a, client)
            with client.stream("GET", f"{a.url}/events", timeout=10) as events:
                lines = events.iter_lines()
                assert next(line for line in lines if line.startswith("data:"))  # the whole board
                data = b.bundle("budi")
                assert b.post(data, "budi").json()["state"] == "stored"
                answered = time.monotonic()  # the push from here: checking it came before
                change = json.loads(next(line for line in lines if line.startswith("data:"))[5:])
                assert time.monotonic() - answered < 1.0
        assert list(change["rows"]) == ["r0s1"] and "12/25.5" in change["rows"]["r0s1"]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)


def test_check_server_refuses_before_grading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from grader.cli import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for env in ("GRADER_STUDENT", "GRADER_KEY", "GRADER_SERVER"):
        monkeypatch.delenv(env, raising=False)
    base = ["check", "--docker-host", "unix:///nonexistent.sock"]
    cases = {
        ("--server", "https://lab.example.edu"): "--server needs --student and --key",
        ("--server", "http://lab.example.edu", "--student", "ani", "--key", "A" * 12): "only for this machine",
        ("--server", "https://lab.example.edu", "--task", "1", "--student", "ani", "--key", "A" * 12): "--task",
    }
    for args, said in cases.items():
        done = CliRunner().invoke(main, [*base, *args])
        assert done.exit_code == 2 and said in done.output, done.output


# -- several labs, progress mode ----------------------------------------------------------------


def test_a_class_of_two_labs_scores_each_bundle_with_its_own_rubric(tmp_path: Path) -> None:
    secret_file, keys = course(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'class.db'}"
    refs = ["docker-networks", "docker-links"]
    app = build(
        db_url=db_url,
        students=STUDENTS,
        secret=secret_file,
        rubric_refs=refs,
        token=TOKEN,
        stuck_after=timedelta(minutes=10),
    )
    other = tmp_path / "other.yaml"  # a lab this class does not run
    links_yaml = (ROOT / "grader/rubrics/docker-links.yaml").read_text()
    other.write_text(links_yaml.replace("id: docker-links", "id: other-lab"))
    with serving(app) as url:
        live = Class(url, db_url, keys, secret_file, tmp_path)
        links = load("docker-links")
        assert live.post(live.bundle("ani"), "ani").json()["score"] == 12.0
        with logged_in() as client:
            login(live, client)
            with client.stream("GET", f"{url}/events") as events:
                lines = (line for line in events.iter_lines() if line.startswith("data:"))
                assert set(json.loads(next(lines)[5:])["rates"]) == {"r0rates", "r1rates"}  # the whole board
                answer = live.post(live.bundle("budi", case="links-reference", rubric=links), "budi")
                assert answer.json()["score"] == answer.json()["max_score"], answer.text
                change = json.loads(next(lines)[5:])
            assert list(change["rows"]) == ["r1s1"] and list(change["rates"]) == ["r1rates"]
            page = client.get(f"{url}/").text
        refused = live.post(live.bundle("ani", case="links-reference", rubric=load(other)), "ani")
        assert (refused.status_code, refused.json()["why"]) == (
            400,
            "a bundle of rubric 'other-lab', not 'docker-networks' or 'docker-links'",
        )
    networks, links_board = page.split('<section class="lab"')[1:]
    assert "Docker networks" in networks and '<tr id="r0s0">' in networks and "12/25.5" in networks
    assert '<tr id="r1s1" class="state">' in links_board and "done" in links_board and "12/25.5" not in links_board
    stored = [(a.student, a.rubric_id) for a in Store(db_url).attempts(checks=False)]
    assert stored == [("ani", "docker-networks"), ("budi", "docker-links")]


def test_two_rubrics_of_one_id_are_a_usage_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from grader.cli import main

    secret_file, _keys = course(tmp_path)
    roster = tmp_path / "roster.csv"
    roster.write_text("student\nani\n")
    args = ["serve", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--roster", str(roster), "--secret", str(secret_file)]
    done = CliRunner().invoke(main, [*args, "--rubric", "docker-networks", "--rubric", "docker-networks"])
    assert done.exit_code == 2
    said = "grader: --rubric docker-networks has the id 'docker-networks' of another --rubric: give each lab once\n"
    assert done.output == said, done.output


@pytest.mark.parametrize("mode", ["final", "progress"])
def test_the_board_counts_as_the_report_does_in_either_mode(tmp_path: Path, mode: str) -> None:
    """A reference lab, then a daemon with its checkpoints gone: progress mode keeps their
    credit, as ``grader report``'s standing does; the pass rates, kept as rows change, are
    those of the rows (a student not connected yet counts in none)."""
    from grader.serve.board import Board
    from grader.standing import standing

    rubric = load("docker-networks").model_copy(update={"mode": mode})
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for minutes, case in ((0, "networks-reference"), (5, "networks-typo")):
        done = graded("ani", case, at=start + timedelta(minutes=minutes))
        store.record("ani", rubric, done.snapshot, done.outcome, "live", start + timedelta(minutes=minutes))
    done = graded("budi", "networks-reference", at=start)
    store.record("budi", rubric, done.snapshot, done.outcome, "live", start)
    board = Board(rubric, ["ani", "budi", "cici"], timedelta(minutes=10))
    attempts = store.attempts("docker-networks", "ani")
    for attempt in [*attempts, *store.attempts("docker-networks", "budi"), attempts[0]]:  # ani's first again: older
        board.add(attempt)
    rows = [board.places[name].counted for name in ("ani", "budi")]
    assert [(r.check, r.percent) for r in board.rates("en")] == [
        (c.id, round(100 * sum(any(d.id == c.id and d.passed for d in row) for row in rows) / 2))
        for _, c in rubric.checks()
    ]
    assert {r.percent for r in board.rates("en")} == {50, 100}  # budi passes all, ani not
    counted = standing("ani", attempts, mode)
    row = board.row("ani", "en")
    assert row.score == f"{counted.score:g}/{counted.max_score:g}"
    assert row.score == ("12/25.5" if mode == "final" else "13.5/25.5")
    assert sum(c.css == "p" for c in row.cells) == sum(c.passed for c in counted.checks)


def test_the_board_keeps_a_bounded_number_of_a_students_daemon_ids(tmp_path: Path) -> None:
    """A bundle may name thousands of containers, new ones each time: the board compares the
    first MAX_IDENTS of a student's daemon IDs and keeps no more, however many attempts come."""
    import dataclasses

    from grader.serve.board import MAX_IDENTS, Board

    rubric = load("docker-networks")
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for name in ("ani", "budi"):
        done = graded(name, "networks-reference", at=start)
        store.record(name, rubric, done.snapshot, done.outcome, "live", start)
    ani, budi = (store.attempts("docker-networks", name)[0] for name in ("ani", "budi"))
    board = Board(rubric, ["ani", "budi"], timedelta(minutes=10))
    for i in range(5):
        made = tuple(f"{i:02d}{n:062d}" for n in range(600))  # 600 new containers each time
        board.add(dataclasses.replace(ani, id=10 + i, engine_id=f"engine-{i}", container_ids=made))
    assert len(board.places["ani"].idents) == MAX_IDENTS
    assert sum(len(owners) for owners in board.owners.values()) == MAX_IDENTS
    first = dataclasses.replace(budi, engine_id="engine-0", container_ids=())  # ani's first daemon: kept
    assert board.add(first) == {"ani", "budi"}
    assert board.row("budi", "en").shared == ["ani"]
    last = dataclasses.replace(budi, id=99, engine_id="engine-4", container_ids=())  # past the bound: not compared
    assert board.add(last) == {"budi"}


# -- stopping, logging in, PostgreSQL's notifications ------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_server_with_an_open_dashboard_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    secret_file, _keys = course(tmp_path)
    port = free_port()
    server = start_serve(tmp_path, port, f"sqlite:///{tmp_path / 'class.db'}", secret_file, students=["ani"])
    live = Class(f"http://127.0.0.1:{port}", "", {}, secret_file, tmp_path)
    try:
        with logged_in() as client:
            login(live, client)
            with client.stream("GET", f"{live.url}/events") as events:
                lines = events.iter_lines()
                assert next(line for line in lines if line.startswith("data:"))
                asked = time.monotonic()
                server.send_signal(stop)
                checking = workers(server.pid)
                assert not any(lines)  # the stream ends
                server.wait(timeout=20)
                assert checking and not any(Path(f"/proc/{pid}").exists() for pid in checking)
    finally:
        server.kill()
        stderr = server.communicate()[1].decode()
    assert time.monotonic() - asked < 2.5  # not uvicorn's graceful timeout (3 s) waited out
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr and "Cancel" not in stderr, stderr
    lines = stderr.splitlines()
    assert lines[0] == f"grader serve: the live class of 1 student at {live.url}/"
    assert lines[-1] == "grader serve: stopped"


def test_wrong_tokens_from_one_address_are_locked_out(live: Class, caplog: pytest.LogCaptureFixture) -> None:
    from grader.serve.app import LOGINS

    caplog.set_level(logging.WARNING, "grader.serve")
    with logged_in() as client:
        for _ in range(LOGINS[0]):
            assert login(live, client, "wrong").status_code == 403
        locked = login(live, client, "wrong")
        assert locked.status_code == 429 and locked.headers["retry-after"] == "60"
        assert locked.text == "too many wrong tokens from address 127.0.0.1: at most one a minute"
        assert login(live, client).status_code == 429  # the right token too, while locked
    assert len(caplog.records) == LOGINS[0]  # a locked client's tries are not logged one by one
    assert live.post(live.bundle("ani"), "ani").status_code == 200  # students are not held back


@pytest.mark.postgres
def test_submissions_while_the_listener_reconnects_reach_the_dashboard(
    tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LISTEN connection is killed (pg_terminate_backend); a submission stored before it
    listens again, whose NOTIFY nobody heard, still reaches the open dashboard."""
    from grader.serve import fanout

    monkeypatch.setattr(fanout, "RECONNECT", 3.0)  # a gap the submission surely falls in
    caplog.set_level(logging.WARNING, "grader.serve")
    secret_file, keys = course(tmp_path)
    app = build(
        db_url=pg_url,
        students=STUDENTS,
        secret=secret_file,
        rubric_refs=["docker-networks"],
        token=TOKEN,
        stuck_after=timedelta(minutes=10),
    )
    with serving(app) as url, logged_in() as client:
        live = Class(url, pg_url, keys, secret_file, tmp_path)
        login(live, client)
        with client.stream("GET", f"{url}/events", timeout=10) as events:
            lines = (line for line in events.iter_lines() if line.startswith("data:"))
            assert next(lines)  # the whole board
            with Store(pg_url).engine.connect() as connection:
                killed = connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = 'LISTEN grader_attempts' AND pid <> pg_backend_pid()"
                ).all()
            assert killed == [(True,)]
            deadline = time.monotonic() + 10
            while not any("lost the PostgreSQL notifications" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the listener did not notice"
                time.sleep(0.02)
            assert live.post(live.bundle("budi"), "budi").json()["state"] == "stored"
            posted = time.monotonic()
            change = json.loads(next(lines)[5:])  # a ReadTimeout after 10 s without one
    assert time.monotonic() - posted < fanout.RECONNECT + 2
    assert list(change["rows"]) == ["r0s1"] and "12/25.5" in change["rows"]["r0s1"]
