"""A live class end to end on the bench: five students, each on a bench daemon of their own
(three on 28.5, two on 20.10), play lab 2 command by command under ``grader check --watch
--server``, all at once, while the instructor's dashboard is open in Chromium; every result a
watcher sends shows on its student's row within a second, up to full marks for each.

The second is measured from when the server began to receive the watcher's POST (a wrapper
of the test's around the app notes the time of each stored attempt's request) to the moment
Chromium's DOM changed the row to that attempt or a later one (a MutationObserver notes it):
both on this machine's clock, neither a sleep. What a command takes to reach the watcher
(its events, the probes, the grade) is reported per engine, bounded loosely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from statistics import median

import pytest
from bench import labs
from bench.daemon import BenchDaemon
from conftest import _started, start_daemon
from playwright.sync_api import Browser
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from test_serve import ROOT, TOKEN, course, serving
from test_watch import with_rm

from grader.serve import build
from grader.store import Store

pytestmark = [pytest.mark.docker, pytest.mark.browser]

ENGINE_OF = {"ani": "28.5", "budi": "20.10", "citra": "28.5", "dewi": "20.10", "eko": "28.5"}
STUDENTS = list(ENGINE_OF)
FULL = "25.5/25.5"


@pytest.fixture(scope="module")
def machines() -> Iterator[dict[str, BenchDaemon]]:
    """One bench daemon per student, started together (the first alone: it may build the
    images' tarball the others load); stopped when the module ends."""
    names = iter(STUDENTS)
    first = next(names)
    daemons = {first: start_daemon(f"e{os.getpid()}-{first}", engine=ENGINE_OF[first])}
    with ThreadPoolExecutor(4) as pool:
        started = pool.map(lambda n: (n, start_daemon(f"e{os.getpid()}-{n}", engine=ENGINE_OF[n])), names)
        daemons.update(started)
    yield daemons
    for daemon in daemons.values():
        _started.remove(daemon)
        daemon.stop()


class Arrivals:
    """The test's ASGI wrapper around the server: when each stored attempt's POST arrived."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.at: dict[int, tuple[str, float]] = {}  # attempt id -> student, time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/api/v1/submissions":
            return await self.app(scope, receive, send)
        arrived, body = time.time(), []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, sending)
        answer = json.loads(b"".join(body) or b"{}")
        if answer.get("state") == "stored":
            self.at[answer["attempt"]] = (answer["student"], arrived)


# Notes every row the dashboard's script swaps in: its key, attempt, score, strip, and when.
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


def test_five_students_play_lab_2_and_the_dashboard_follows_each(
    machines: dict[str, BenchDaemon], tmp_path: Path, browser: Browser
) -> None:
    began = time.monotonic()
    secret_file, keys = course(tmp_path, STUDENTS)
    db_url = f"sqlite:///{tmp_path / 'class.db'}"
    app = build(
        db_url=db_url,
        students=STUDENTS,
        secret=secret_file,
        rubric_refs=["docker-networks"],
        token=TOKEN,
        stuck_after=timedelta(minutes=10),
    )
    arrivals = Arrivals(app)
    key = {name: f"r0s{i}" for i, name in enumerate(STUDENTS)}
    rows: dict[str, dict] = {}  # key -> the row as last seen
    seen: list[dict] = []
    changed = threading.Condition()
    played: dict[str, list[tuple[str, str, float, float]]] = {n: [] for n in STUDENTS}  # step, engine, end, seen
    failures: list[BaseException] = []

    def student(name: str, url: str) -> None:
        daemon = machines[name]
        try:
            for step in labs.NETWORKS_LAB:
                with changed:
                    before, mark = rows[key[name]]["strip"], len(seen)
                for command in step.commands:
                    labs.play(daemon, [labs.Step(step.title, (command,), step.stdin)], rewrite=with_rm)
                end = time.time()
                if step.title == "explore":  # only reads: nothing to see
                    continue

                def moved(before: str = before, mark: int = mark) -> dict | None:
                    return next((s for s in seen[mark:] if s["key"] == key[name] and s["strip"] != before), None)

                with changed:
                    note = changed.wait_for(moved, timeout=90)
                assert note, f"{name}'s row did not change after {step.title!r}"
                played[name].append((step.title, ENGINE_OF[name], end, max(note["at"] / 1000, end)))
            with changed:
                assert changed.wait_for(lambda: rows[key[name]]["score"] == FULL, timeout=90), rows[key[name]]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    watchers: list[subprocess.Popen[bytes]] = []
    with serving(arrivals) as url:
        page = browser.new_page()
        try:
            page.goto(f"{url}/login")
            page.fill("input[name=token]", TOKEN)
            page.click("button")
            page.wait_for_selector("table.live")
            page.evaluate(OBSERVE)
            for name in STUDENTS:
                env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / name)}
                env.update(GRADER_SERVER=url, GRADER_STUDENT=name, GRADER_KEY=keys[name])
                command = [sys.executable, "-m", "grader.cli", "check", "--watch", "--rubric", "docker-networks"]
                command += ["--docker-host", machines[name].host, "--db", f"sqlite:///{tmp_path / name}.db"]
                with open(tmp_path / f"{name}.out", "wb") as out:
                    watchers.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))

            def watched() -> None:  # the browser's notes, to the students' threads
                news = page.evaluate("() => window.__seen.splice(0)")
                with changed:
                    for note in news:
                        rows[note["key"]] = note
                    seen.extend(news)
                    changed.notify_all()

            # Each watcher's first grade (the empty daemon) before the first command.
            deadline = time.monotonic() + 90
            while len({s["key"] for s in seen}) < len(STUDENTS):
                assert time.monotonic() < deadline, f"not every watcher sent its first grade: {rows}"
                watched()
                time.sleep(0.05)
            threads = [threading.Thread(target=student, args=(name, url)) for name in STUDENTS]
            for thread in threads:
                thread.start()
            while any(t.is_alive() for t in threads):
                watched()
                time.sleep(0.05)
            watched()
        finally:
            page.close()
            for watcher in watchers:
                watcher.terminate()
            for watcher in watchers:
                watcher.wait(timeout=60)
    if failures:
        raise failures[0]

    # Every stored attempt reached its row, within a second of its POST.
    delays: dict[str, list[float]] = {"28.5": [], "20.10": []}
    for attempt, (name, arrived) in sorted(arrivals.at.items()):
        shown = [s["at"] / 1000 for s in seen if s["key"] == key[name] and s["attempt"] >= attempt]
        assert shown, f"attempt {attempt} of {name} never reached the dashboard"
        delays[ENGINE_OF[name]].append(min(shown) - arrived)
    to_row = {e: [round(seen - end, 2) for n in STUDENTS for _, en, end, seen in played[n] if en == e] for e in delays}
    print(f"the live class of five: {time.monotonic() - began:.0f} s, {len(arrivals.at)} attempts stored")
    for engine, values in delays.items():
        print(f"  {engine}: POST to row: median {median(values):.3f} s, max {max(values):.3f} s")
        print(f"  {engine}: a step's last command to its row: median {median(to_row[engine])} s, all {to_row[engine]}")
    assert max(max(v) for v in delays.values()) < 1.0, delays

    store = Store(db_url)
    for name in STUDENTS:
        output = (tmp_path / f"{name}.out").read_text()
        assert "Traceback" not in output and "server: sent" in output, output[-2000:]
        attempts = store.attempts("docker-networks", name)
        assert {a.source for a in attempts} == {"live"}
        assert attempts[-1].score == attempts[-1].max_score
        assert len({a.snapshot_digest for a in attempts}) == len(attempts)  # none twice
    assert max(max(v) for v in to_row.values()) < 30, to_row  # the watch's grade and probes on a busy machine
