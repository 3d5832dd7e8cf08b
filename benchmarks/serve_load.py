"""Benchmark (issue 21): a live class on one machine. ``grader serve`` (one or more processes,
loopback only) takes simulated students, each sending a new sealed bundle of a recorded lab-2
daemon every ``--interval`` seconds for ``--seconds``; an instructor's event stream (SSE, what
a dashboard receives) is open on the first process. Prints the POST's latency and the latency
from a POST to its row arriving on the stream (p50, p99), the throughput, the POSTs answered
"stored" against the rows in the store (none lost, none twice), the servers' CPU time per
submission (on a shared machine, the figure that does not depend on the neighbours), and
their RSS through the run.

    python benchmarks/serve_load.py [--students 300] [--seconds 30] [--interval 2]
        [--db postgresql+psycopg://... --processes 2]

Bounded: at most 1,000 students, 900 seconds; servers bind 127.0.0.1 only."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.bundle import sealed  # noqa: E402
from grader.evaluate import evaluate  # noqa: E402
from grader.facts import daemon_ids  # noqa: E402
from grader.grading import Graded  # noqa: E402
from grader.keys import seal, secret, student_key  # noqa: E402
from grader.rubric import load  # noqa: E402
from grader.snapshot import Snapshot, canonical, text_digest  # noqa: E402
from grader.store import Store  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "networks-typo" / "snapshot.json"
TOKEN = "benchmark-instructor-token"
RSS_EVERY = 5.0  # seconds between samples of the servers' memory
WINDOW = 10.0  # seconds of the run whose POST-to-row p99 is printed apart (the first warms up)
MOMENT = datetime.now(UTC) - timedelta(hours=1)  # the bundles' moments: from an hour ago, a microsecond apart
AT, SNAPSHOT_DIGEST, BUNDLE_DIGEST, SEAL = (
    "2000-01-02T03:04:05.678901+00:00",
    "@snapshot-digest@",
    "@bundle-digest@",
    "@seal@",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's checking workers)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += parents.get(found[-1], [])
    return found


def rss_mb(pid: int) -> tuple[float, float]:
    """The RSS of ``pid`` itself, and of its descendants (its checking workers)."""
    own, rest = 0.0, 0.0
    for one in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    mb = int(line.split()[1]) / 1024
                    own, rest = (own + mb, rest) if one == pid else (own, rest + mb)
    return own, rest


def said_rss(at: list[tuple[float, float]]) -> str:
    """Each server's RSS, with its own process's and its workers' apart."""
    return ", ".join(f"{own + rest:.0f} ({own:.0f} + {rest:.0f})" for own, rest in at)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The CPU time so far (user and system) of ``pid`` itself, and of its descendants (its
    checking workers; ended ones it waited for included)."""
    own, rest = 0, 0
    for one in family(pid):
        with contextlib.suppress(OSError):
            fields = [int(f) for f in Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()[11:15]]
            own, rest = (own + sum(fields[:2]), rest + sum(fields[2:])) if one == pid else (own, rest + sum(fields))
    tick = os.sysconf("SC_CLK_TCK")
    return own / tick, rest / tick


class Bundles:
    """New sealed bundles of one recorded daemon, each a new moment of it (a 10-minute run of
    300 students sends 90,000): each student's bundle is written once with placeholders, and a
    new one costs two sha256 and a gzip, not the 5 ms of a model's. They are made before the
    class starts (``prepare``), as each student's own laptop makes its bundles: making them
    during the run took some 0.3 of the two cores the servers are measured on."""

    def __init__(self, students: list[str], course: bytes):
        rubric = load("docker-networks")
        recorded = Snapshot.from_json(GOLDEN.read_text()).model_copy(update={"taken_at": AT})
        outcome = evaluate(rubric, recorded)
        engine_id, container_ids = daemon_ids(recorded)
        recorded_json = recorded.model_dump_json()
        self.keys = {name: student_key(course, name) for name in students}
        self.snapshot_texts: dict[str, str] = {}  # student -> their snapshot's canonical JSON
        self.templates: dict[str, tuple[str, str]] = {}  # student -> (canonical bundle, its JSON)
        for name in students:
            # Each student's own daemon (a class shares none): its engine and containers get IDs of their own.
            own = recorded_json
            for ident in [engine_id or "", *container_ids]:
                own = own.replace(ident, hashlib.sha256(f"{name} {ident}".encode()).hexdigest()[: len(ident)])
            base = Snapshot.from_json(own)
            self.snapshot_texts[name] = canonical(base.model_dump(mode="json", exclude={"digest"}))
            graded = Graded(name, rubric, base.model_copy(update={"digest": SNAPSHOT_DIGEST}), outcome, "")
            bundle = sealed(graded)
            text = canonical(bundle.model_dump(mode="json", exclude={"digest", "seal"}))
            sent = bundle.model_copy(update={"digest": BUNDLE_DIGEST, "seal": SEAL}).model_dump_json(indent=1)
            self.templates[name] = (text, sent)
        self.made = 0
        self.ready: dict[str, list[bytes]] = {name: [] for name in students}

    def prepare(self, each: int) -> None:
        for name in self.ready:
            self.ready[name] = [self.make(name) for _ in range(each)][::-1]  # popped: the first made goes first

    def next(self, name: str) -> bytes:
        ready = self.ready[name]
        return ready.pop() if ready else self.make(name)

    def make(self, name: str) -> bytes:
        self.made += 1
        at = (MOMENT + timedelta(microseconds=self.made)).isoformat()
        snapshot_digest = text_digest(self.snapshot_texts[name].replace(AT, at))
        text, sent = self.templates[name]
        digest = text_digest(text.replace(AT, at).replace(SNAPSHOT_DIGEST, snapshot_digest))
        for mark, value in ((AT, at), (SNAPSHOT_DIGEST, snapshot_digest), (BUNDLE_DIGEST, digest)):
            sent = sent.replace(mark, value)
        return gzip.compress(sent.replace(SEAL, seal(self.keys[name], digest)).encode(), 1)


class Connection:
    """A student's keep-alive HTTP/1.1 connection, as lean as the protocol allows: the load
    generator shares the machine's cores with the servers it measures (httpx cost some 25 ms of
    CPU a POST at 300 connections, more than the server's work)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post(self, name: str, data: bytes) -> tuple[int, dict[str, Any]]:
        head = (
            f"POST /api/v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
            f"X-Grader-Student: {quote(name, safe='')}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            field, _, value = line.decode("latin-1").partition(":")
            if field.lower() == "content-length":
                length = int(value)
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


def start(folder: Path, port: int, db_url: str, workers: int | None) -> subprocess.Popen[bytes]:
    (folder / "token").write_text(TOKEN)
    command = [sys.executable, "-m", "grader.cli", "serve", "--db", db_url, "--roster", str(folder / "roster.csv")]
    command += ["--secret", str(folder / "course.key"), "--token-file", str(folder / "token")]
    command += ["--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers)] if workers is not None else []
    log = (folder / f"server-{port}.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=log)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


async def run(args: argparse.Namespace, urls: list[str], made: Bundles, servers: list[int]) -> dict[str, Any]:
    names = list(made.templates)
    sent_at: dict[str, list[float]] = {name: [] for name in names}
    by_key = {f"r0s{i}": name for i, name in enumerate(names)}
    post_ms: list[float] = []
    board_ms: list[float] = []
    board_window: list[int] = []  # each board_ms's WINDOW of the run
    states: dict[str, int] = {}
    acknowledged: list[int] = []  # the attempt ids answered "stored"
    rss: list[list[tuple[float, float]]] = []  # each server's (its own, its workers'), every RSS_EVERY seconds
    stop = asyncio.Event()

    async with httpx.AsyncClient(timeout=30) as client:  # the instructor's
        form = await client.get(f"{urls[0]}/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        await client.post(f"{urls[0]}/login", data={"token": TOKEN, "csrf": csrf})

        async def dashboard() -> None:
            async with client.stream("GET", f"{urls[0]}/events", timeout=None) as events:
                async for line in events.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    now = time.monotonic()
                    for key in json.loads(line[5:])["rows"]:  # r0s<i>: the first board's row of student i
                        name = by_key[key]
                        while sent_at[name]:
                            board_ms.append(1000 * (now - sent_at[name].pop(0)))
                            board_window.append(int((now - began) / WINDOW))

        async def memory() -> None:
            while not stop.is_set():
                rss.append([rss_mb(pid) for pid in servers])
                await asyncio.sleep(RSS_EVERY)

        async def student(i: int, name: str, until: float) -> None:
            host, port = urls[i % len(urls)].removeprefix("http://").split(":")
            await asyncio.sleep(args.interval * i / len(names))  # spread over one interval
            connection: Connection | None = None
            while time.monotonic() < until:
                data = made.next(name)
                began = time.monotonic()
                sent_at[name].append(began)
                try:
                    connection = connection or await Connection.open(host, int(port))
                    status, body = await asyncio.wait_for(connection.post(name, data), 30)
                    state = body.get("state", "") + (f" {status}" if status != 200 else "")
                    if state == "stored":
                        acknowledged.append(body["attempt"])
                except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    state = f"no answer ({type(exc).__name__})"
                    if connection is not None:
                        connection.close()
                    connection = None
                post_ms.append(1000 * (time.monotonic() - began))
                states[state] = states.get(state, 0) + 1
                if state != "stored" and began in sent_at[name]:
                    sent_at[name].remove(began)
                await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - began)))
            if connection is not None:
                connection.close()

        began = time.monotonic()
        watcher = asyncio.create_task(dashboard())
        sampler = asyncio.create_task(memory())
        await asyncio.gather(*(student(i, name, began + args.seconds) for i, name in enumerate(names)))
        elapsed = time.monotonic() - began
        await asyncio.sleep(2)  # the last rows
        stop.set()
        rss.append([rss_mb(pid) for pid in servers])
        watcher.cancel()
        sampler.cancel()
    unseen = sum(len(v) for v in sent_at.values())
    return {
        "post_ms": post_ms,
        "board_ms": board_ms,
        "board_window": board_window,
        "unseen": unseen,
        "states": states,
        "acknowledged": acknowledged,
        "rss": rss,
        "elapsed": elapsed,
    }


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else (values or [0.0])[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--db", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--processes", type=int, default=1, help="server processes (PostgreSQL for more than 1)")
    parser.add_argument("--workers", type=int, default=None, help="each server's checking workers (default: its own)")
    args = parser.parse_args()
    args.students, args.seconds = min(args.students, 1000), min(args.seconds, 900)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as folder:  # a 10-minute run's store is some 4.5 GB
        measure(args, Path(folder))


def measure(args: argparse.Namespace, folder: Path) -> None:
    db_url = args.db or f"sqlite:///{folder / 'class.db'}"
    if args.processes > 1 and not db_url.startswith("postgresql"):
        raise SystemExit("several processes share a PostgreSQL --db")
    course = secret(folder / "course.key", create=True)[0]
    names = [f"student-{i:03d}" for i in range(args.students)]
    (folder / "roster.csv").write_text("student\n" + "\n".join(names) + "\n")
    made = Bundles(names, course)
    began = time.monotonic()
    made.prepare(int(args.seconds / args.interval) + 2)
    print(f"{made.made} bundles made beforehand in {time.monotonic() - began:.0f} s", flush=True)
    store = Store(db_url)  # the schema, before several processes open it
    before = {row.id for row in store.attempts(checks=False)}
    ports = [free_port() for _ in range(args.processes)]
    servers = [start(folder, port, db_url, args.workers) for port in ports]
    cpu_before, own_before = [cpu_seconds(s.pid) for s in servers], time.process_time()
    try:
        found = asyncio.run(run(args, [f"http://127.0.0.1:{p}" for p in ports], made, [s.pid for s in servers]))
        cpu = [
            tuple(now - then for now, then in zip(cpu_seconds(s.pid), before, strict=True))
            for s, before in zip(servers, cpu_before, strict=True)
        ]
        own = time.process_time() - own_before
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    rows = [row for row in store.attempts(checks=False) if row.id not in before]
    ids = {row.id for row in rows}
    distinct = {(row.student, row.snapshot_digest) for row in rows}
    acknowledged = found["acknowledged"]
    for log in sorted(folder.glob("server-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        print(f"{log.name}: {len(lines)} lines; last: {lines[-1][:160] if lines else ''}")
    post, board, rss = found["post_ms"], found["board_ms"], found["rss"]
    backend = db_url.split(":")[0].split("+")[0]
    print(
        f"{args.students} students, a change every {args.interval:g} s for {found['elapsed']:.0f} s, {backend}, "
        f"{args.processes} server process(es), checking workers {'default' if args.workers is None else args.workers}; "
        f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(f"answers: {found['states']}")
    print(
        f"acknowledged stored {len(acknowledged)}, rows stored {len(rows)}, distinct (student, snapshot) "
        f"{len(distinct)}: stored twice {len(rows) - len(distinct)}, acknowledged but not stored "
        f"{len(set(acknowledged) - ids)}, stored without an acknowledgement {len(ids - set(acknowledged))}"
    )
    print(f"POST latency ms: p50 {pct(post, 50):.0f}, p99 {pct(post, 99):.0f}, max {max(post, default=0):.0f}")
    print(
        f"POST to dashboard row (SSE) ms: p50 {pct(board, 50):.0f}, p99 {pct(board, 99):.0f}, "
        f"max {max(board, default=0):.0f} ({len(board)} rows seen, {found['unseen']} stored never seen)"
    )
    windows: dict[int, list[float]] = {}
    for ms, window in zip(board, found["board_window"], strict=True):
        windows.setdefault(window, []).append(ms)
    said = ", ".join(f"{pct(v, 99):.0f}" for _, v in sorted(windows.items()))
    print(f"POST to dashboard row p99 ms in each {WINDOW:.0f} s of the run: {said}")
    print(f"throughput: {len(post) / found['elapsed']:.1f} submissions/s, {len(rows) / found['elapsed']:.1f} stored/s")
    total = sum(sum(c) for c in cpu)
    print(
        f"server CPU s (its own process + its workers): {', '.join(f'{c[0]:.1f} + {c[1]:.1f}' for c in cpu)}; "
        f"a submission {1000 * total / max(1, len(post)):.1f} ms, a stored one "
        f"{', '.join(f'{1000 * c[0] / max(1, len(rows)):.1f} + {1000 * c[1] / max(1, len(rows)):.1f}' for c in cpu)}"
        " ms; "
        f"{total / found['elapsed']:.2f} cores; this benchmark's own: {own:.1f} s"
    )
    samples = "; ".join(said_rss(at) for at in rss[:: max(1, len(rss) // 10)])
    print(f"server RSS MB (its own process + its workers): start {said_rss(rss[0])}; end {said_rss(rss[-1])}")
    print(f"server RSS MB every {RSS_EVERY * max(1, len(rss) // 10):.0f} s: {samples}")


if __name__ == "__main__":
    main()
