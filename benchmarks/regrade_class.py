"""Benchmark (issue 4): regrading 10,000 stored attempts with the current rubric takes
under 10 s. The store is filled with attempts whose snapshots were recorded on the bench
(tests/golden, lab 2), each made distinct (its own time and digest) so every attempt is
really re-evaluated; the rubric is then changed and `grader regrade` run on it.

    python benchmarks/regrade_class.py [--attempts 10000] [--db URL]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from grader.evaluate import evaluate
from grader.rubric import load
from grader.snapshot import Snapshot
from grader.store import Store

ROOT = Path(__file__).resolve().parent.parent
CASES = ["networks-reference", "networks-typo", "networks-forgot-connect"]


def fill(store: Store, attempts: int) -> None:
    rubric = load("docker-networks")
    recorded = [Snapshot.from_json((ROOT / "tests" / "golden" / c / "snapshot.json").read_text()) for c in CASES]
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    for n in range(attempts):
        when = start + timedelta(minutes=n)
        snapshot = recorded[n % len(recorded)].model_copy(update={"taken_at": when.isoformat()}).sealed()
        store.record(f"student{n // 5:04d}", rubric, snapshot, evaluate(rubric, snapshot), "batch", when)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="store to fill (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure(args, Path(folder))


def measure(args: argparse.Namespace, folder: Path) -> None:
    url = args.db or f"sqlite:///{folder / 'class.db'}"
    store = Store(url)
    t = time.perf_counter()
    fill(store, args.attempts)
    print(f"filled {args.attempts} attempts in {time.perf_counter() - t:.1f} s ({url})")

    source = (ROOT / "rubrics" / "docker-networks.yaml").read_text()
    changed = folder / "docker-networks.yaml"
    changed.write_text(source.replace("points: 2", "points: 3"))
    cmd = [sys.executable, "-m", "grader.cli", "regrade", "--rubric", str(changed), "--db", url]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    took = time.perf_counter() - t
    print(done.stdout.splitlines()[0])
    print(f"regrade of {args.attempts} attempts: {took:.2f} s wall (cold process; target < 10 s)")
    print(f"per attempt: {took / args.attempts * 1000:.2f} ms")


if __name__ == "__main__":
    main()
