"""Benchmark (issue 4): the HTML report of a class of 1,000 students x 25 checks.
Targets: the class dashboard renders in under 5 s and index.html stays under 2 MB.
The whole site (a page per student and per attempt) is timed too.

The attempts are real evaluations, not hand-written results: the golden snapshots recorded
from the bench (tests/golden/) are varied by leaving out some of their containers and
networks, re-sealed, and evaluated with a 25-check rubric made of both bundled rubrics.

    python benchmarks/report_class.py [--students 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grader import report
from grader.evaluate import evaluate
from grader.outcome import Outcome
from grader.rubric import load
from grader.rubric.model import Rubric
from grader.snapshot import Snapshot
from grader.store import Store

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
# Lab 1 checks added to lab 2's twenty; prerequisites outside this set are dropped.
FROM_LINKS = ["redis-server-running", "redis-server-pong", "link-env", "hosts-entry", "ping-redis"]


def class_rubric() -> Rubric:
    """Lab 2's rubric with a task of lab 1's checks: 25 checks."""
    body = load("docker-networks").model_dump(mode="json", exclude_defaults=True)
    links = {c.id: c for _, c in load("docker-links").checks()}
    extra = []
    for check_id in FROM_LINKS:
        check = links[check_id].model_dump(mode="json", exclude_defaults=True)
        check["id"] = f"links-{check_id}"
        check["needs"] = [f"links-{n}" for n in check.get("needs", []) if n in FROM_LINKS]
        extra.append(check)
    body.update(id="class-25", title="Docker networks and links (benchmark)")
    body["tasks"].append({"title": "10. Legacy links", "checks": extra})
    rubric = Rubric.model_validate(body)
    assert len(rubric.checks()) == 25
    return rubric


def variants(rubric: Rubric, per_case: int, rng: random.Random) -> list[tuple[Snapshot, Outcome]]:
    """Each golden snapshot as recorded and with some containers or networks left out."""
    found = []
    for path in sorted(GOLDEN.glob("*/snapshot.json")):
        golden = Snapshot.from_json(path.read_text())
        for n in range(per_case):
            keep = 1.0 if n == 0 else rng.uniform(0.5, 0.95)
            snapshot = golden.model_copy(
                update={
                    "containers": [c for c in golden.containers if rng.random() < keep],
                    "networks": [x for x in golden.networks if rng.random() < keep],
                }
            ).sealed()
            found.append((snapshot, evaluate(rubric, snapshot)))
    return found


def fill(store: Store, students: int, rng: random.Random) -> int:
    rubric = class_rubric()
    pool = variants(rubric, 8, rng)
    links = load("docker-links")
    links_snapshot = Snapshot.from_json((GOLDEN / "links-reference" / "snapshot.json").read_text())
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    attempts = 0
    for i in range(students):
        name = f"student-{i:04d}"
        at = start + timedelta(minutes=i)
        if i % 50 == 7:  # known to the store, never attempted this rubric
            store.record(name, links, links_snapshot, evaluate(links, links_snapshot), "grade", graded_at=at)
            attempts += 1
            continue
        for n in range(rng.randint(1, 3)):
            at += timedelta(hours=n + 1)
            snapshot, outcome = rng.choice(pool)
            store.record(name, rubric, snapshot, outcome, rng.choice(["grade", "check", "batch"]), graded_at=at)
            attempts += 1
        if i % 40 == 3:  # the latest attempt found no daemon
            store.record_error(name, rubric, "batch", "daemon unreachable: connection refused", graded_at=at)
            attempts += 1
    return attempts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="site folder (default: a temporary one, removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-bench-") as work:
        measure(args, Path(work))


def measure(args: argparse.Namespace, work: Path) -> None:
    out = args.out or work / "site"
    store = Store(f"sqlite:///{work / 'class.db'}")
    started = time.perf_counter()
    attempts = fill(store, args.students, random.Random(4))
    print(f"store: {args.students} students, {attempts} attempts, filled in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    site = report.load(store)
    loaded = time.perf_counter() - started
    html = report.template("index.html").render(page=site.index, root="")
    index_time = time.perf_counter() - started
    size = len(html.encode())
    print(f"class dashboard: {index_time:.2f} s (store read {loaded:.2f} s) [target < 5 s]")
    print(f"index.html: {size / 1e6:.2f} MB [target < 2 MB]")

    started = time.perf_counter()
    index = report.build(store, out)
    whole = time.perf_counter() - started
    pages = sum(1 for _ in out.rglob("*.html"))
    print(f"whole site: {pages} pages in {whole:.2f} s ({1000 * whole / pages:.1f} ms a page), {index}")


if __name__ == "__main__":
    main()
