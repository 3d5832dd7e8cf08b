"""A live class end to end on the bench: a student plays lab 2 command by command under
``grader check --watch --server`` while the instructor's dashboard is open in Chromium, which
sees the student's row change after each step, up to full marks.

Kept to one student on one engine (28.5) for CI's time: the server's handling of many
students, forged keys, floods and a killed server is in test_serve.py without a daemon, and
``check --watch`` on both engines in test_watch.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench import labs
from bench.daemon import BenchDaemon
from playwright.sync_api import Browser
from test_serve import ROOT, TOKEN, Class, live, until  # noqa: F401  (live: the server fixture)
from test_watch import with_rm

from grader.store import Store

pytestmark = [pytest.mark.docker, pytest.mark.browser, pytest.mark.engines("28.5")]


def test_a_student_plays_lab_2_and_the_dashboard_follows(
    daemon: BenchDaemon,
    live: Class,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    browser: Browser,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.update(GRADER_SERVER=live.url, GRADER_STUDENT="ani", GRADER_KEY=live.keys["ani"])
    command = [sys.executable, "-m", "grader.cli", "check", "--watch", "--rubric", "docker-networks"]
    command += ["--docker-host", daemon.host, "--db", f"sqlite:///{tmp_path / 'ani.db'}"]
    student = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    waits: list[tuple[str, float]] = []
    page = browser.new_page()
    try:
        page.goto(f"{live.url}/login")
        page.fill("input[name=token]", TOKEN)
        page.click("button")
        strip = "document.querySelector('tr#s0 td.strip').innerHTML"
        until(page, f"{strip}.includes('cell f')", timeout=60)  # the empty daemon's grade
        for step in labs.NETWORKS_LAB:
            before = page.evaluate(strip)
            labs.play(daemon, [step], rewrite=with_rm)
            played = time.monotonic()
            if step.title == "explore":  # only reads: nothing to see
                continue
            until(page, f"{strip} !== {json.dumps(before)}", timeout=30)
            waits.append((step.title, time.monotonic() - played))
        score = page.locator("tr#s0 td.num").first.inner_text()
        assert score == "25.5/25.5", score
        assert "selesai" not in page.inner_text("tr#s0")  # English board
    finally:
        page.close()
        student.terminate()
        output = student.communicate(timeout=60)[0].decode()
    print("seconds from a step's last command to the row's change:", [(n, round(s, 2)) for n, s in waits])
    assert "Traceback" not in output
    assert "server: sent" in output
    attempts = Store(live.db_url).attempts("docker-networks", "ani")
    assert {a.source for a in attempts} == {"live"} and attempts[-1].score == attempts[-1].max_score
    assert max(s for _, s in waits) < 5.0, waits  # the watch's grade and probes included
