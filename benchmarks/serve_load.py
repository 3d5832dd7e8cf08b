"""Benchmark (issue 21): a live class on one machine. ``grader serve`` (one or more processes,
loopback only) takes simulated students, each sending a new sealed bundle of a recorded lab-2
daemon every ``--interval`` seconds for ``--seconds``; an instructor's event stream is open on
the first process. Prints the POST's latency, the latency from a POST to its row arriving on
the dashboard's stream (p50, p99), the throughput, attempts stored against sent (none lost,
none twice), and each server's RSS at start and end.

    python benchmarks/serve_load.py [--students 300] [--seconds 30] [--interval 2]
        [--db postgresql+psycopg://... --processes 2]

Bounded: at most 1,000 students, 300 seconds; servers bind 127.0.0.1 only."""

from __future__ import annotations

import argparse
import asyncio
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
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.bundle import encoded, sealed  # noqa: E402
from grader.evaluate import evaluate  # noqa: E402
from grader.grading import Graded  # noqa: E402
from grader.keys import secret, student_key  # noqa: E402
from grader.rubric import load  # noqa: E402
from grader.snapshot import Snapshot  # noqa: E402
from grader.store import Store  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "networks-typo" / "snapshot.json"
TOKEN = "benchmark-instructor-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bundles(students: list[str], course: bytes, count: int) -> dict[str, list[bytes]]:
    """``count`` bundles per student, each a new moment of one recorded daemon."""
    rubric = load("docker-networks")
    base = Snapshot.from_json(GOLDEN.read_text())
    outcome = evaluate(rubric, base)
    start = datetime.now(UTC) - timedelta(hours=1)
    made: dict[str, list[bytes]] = {}
    for i, name in enumerate(students):
        key = student_key(course, name)
        made[name] = []
        for n in range(count):
            at = (start + timedelta(seconds=i * count + n)).isoformat()
            snapshot = base.model_copy(update={"taken_at": at}).sealed()
            graded = Graded(name, rubric, snapshot, outcome, at)
            made[name].append(encoded(sealed(graded, key), packed=True))
    return made


def start(folder: Path, port: int, db_url: str, secret_file: Path, roster: Path) -> subprocess.Popen[bytes]:
    (folder / "token").write_text(TOKEN)
    command = [sys.executable, "-m", "grader.cli", "serve", "--db", db_url, "--roster", str(roster)]
    command += ["--secret", str(secret_file), "--bind", f"127.0.0.1:{port}", "--token-file", str(folder / "token")]
    log = (folder / f"server-{port}.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=log)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


async def run(args: argparse.Namespace, urls: list[str], made: dict[str, list[bytes]]) -> dict[str, object]:
    sent_at: dict[str, list[float]] = {name: [] for name in made}
    keys = {name: f"s{i}" for i, name in enumerate(made)}
    by_key = {v: k for k, v in keys.items()}
    post_ms: list[float] = []
    board_ms: list[float] = []
    states: dict[str, int] = {}
    stop = asyncio.Event()

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
        form = await client.get(f"{urls[0]}/login")
        csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
        await client.post(f"{urls[0]}/login", data={"token": TOKEN, "csrf": csrf})

        async def dashboard() -> None:
            async with client.stream("GET", f"{urls[0]}/events", timeout=None) as events:
                async for line in events.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    now = time.monotonic()
                    for key in json.loads(line[5:])["rows"]:
                        name = by_key[key]
                        while sent_at[name]:
                            board_ms.append(1000 * (now - sent_at[name].pop(0)))
                    if stop.is_set():
                        return

        async def student(i: int, name: str) -> None:
            url = urls[i % len(urls)]
            await asyncio.sleep(args.interval * i / len(made))  # spread over one interval
            for data in made[name]:
                began = time.monotonic()
                sent_at[name].append(began)
                try:
                    answer = await client.post(
                        f"{url}/api/v1/submissions", content=data, headers={"X-Grader-Student": quote(name, safe="")}
                    )
                    status = answer.status_code
                    state = answer.json().get("state", "") + (f" {status}" if status != 200 else "")
                except httpx.HTTPError as exc:
                    state = f"no answer ({type(exc).__name__})"
                post_ms.append(1000 * (time.monotonic() - began))
                states[state] = states.get(state, 0) + 1
                if state != "stored" and began in sent_at[name]:
                    sent_at[name].remove(began)
                await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - began)))

        watcher = asyncio.create_task(dashboard())
        began = time.monotonic()
        await asyncio.gather(*(student(i, name) for i, name in enumerate(made)))
        elapsed = time.monotonic() - began
        await asyncio.sleep(2)  # the last rows
        stop.set()
        watcher.cancel()
    return {"post_ms": post_ms, "board_ms": board_ms, "states": states, "elapsed": elapsed}


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else (values or [0.0])[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--db", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--processes", type=int, default=1, help="server processes (PostgreSQL for more than 1)")
    args = parser.parse_args()
    args.students, args.seconds = min(args.students, 1000), min(args.seconds, 300)
    folder = Path(tempfile.mkdtemp(prefix="serve-load-"))
    db_url = args.db or f"sqlite:///{folder / 'class.db'}"
    if args.processes > 1 and not db_url.startswith("postgresql"):
        raise SystemExit("several processes share a PostgreSQL --db")
    course = secret(folder / "course.key", create=True)[0]
    names = [f"student-{i:03d}" for i in range(args.students)]
    (folder / "roster.csv").write_text("student\n" + "\n".join(names) + "\n")
    count = max(1, int(args.seconds / args.interval))
    print(f"making {args.students * count} bundles ...", file=sys.stderr)
    made = bundles(names, course, count)
    Store(db_url)  # the schema, before several processes open it
    ports = [free_port() for _ in range(args.processes)]
    servers = [start(folder, port, db_url, folder / "course.key", folder / "roster.csv") for port in ports]
    rss_before = [rss_mb(s.pid) for s in servers]
    try:
        found = asyncio.run(run(args, [f"http://127.0.0.1:{p}" for p in ports], made))
        rss_after = [rss_mb(s.pid) for s in servers]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    stored = len(Store(db_url).attempts(checks=False))
    for log in sorted(folder.glob("server-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        print(f"{log.name}: {len(lines)} lines; last: {lines[-1][:160] if lines else ''}")
    post, board = found["post_ms"], found["board_ms"]
    backend = db_url.split(":")[0].split("+")[0]
    print(
        f"{args.students} students, a change every {args.interval:g} s for {found['elapsed']:.0f} s, {backend}, "
        f"{args.processes} server process(es)"
    )
    print(
        f"answers: {found['states']}; attempts stored {stored} (sent and answered stored: "
        f"{found['states'].get('stored', 0)})"
    )
    print(f"POST latency ms: p50 {pct(post, 50):.0f}, p99 {pct(post, 99):.0f}")
    print(f"POST to dashboard row ms: p50 {pct(board, 50):.0f}, p99 {pct(board, 99):.0f} ({len(board)} rows seen)")
    print(f"throughput: {len(post) / found['elapsed']:.1f} submissions/s")
    before, after = (", ".join(f"{r:.0f}" for r in rss) for rss in (rss_before, rss_after))
    print(f"server RSS MB: start {before}; end {after}")


if __name__ == "__main__":
    main()
