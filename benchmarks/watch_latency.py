"""Benchmark (issues 13, 20): `check --watch` latency on a bench daemon. Lab 2 is played command
by command; for each, the time from the command returning to the watcher showing a grade that
has seen it (its event in the timeline), and how many probes that grade ran again. Targets,
printed met or not: the change shown (inspected, before any probe runs again) within 0.1 s
median (issue 20; issue 13 asked 0.3 s), and within 0.8 s median when probes run again. Also
the watcher's CPU while the daemon is idle.

    python benchmarks/watch_latency.py [--engine 20.10|28.5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402

from grader.grading import Graded  # noqa: E402
from grader.watch import Watch, watching  # noqa: E402

SHOWN = 0.1  # seconds, median: issue 20's target for an inspected change
PROBED = 0.8  # seconds, median: issue 13's target when probes run again


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", default="20.10")
    args = parser.parse_args()
    daemon = BenchDaemon("bench-watch", engine=args.engine).start()
    shown: list[tuple[float, Graded, int]] = []  # when, what, probes still running for it
    arrived = threading.Condition()

    def show(graded: Graded, _note: str, pending: int) -> None:
        with arrived:
            shown.append((time.perf_counter(), graded, pending))
            arrived.notify_all()

    folder = Path(tempfile.mkdtemp())
    try:
        images.load_images(daemon, images.images_tar(daemon))
        db = f"sqlite:///{folder / 'watch.db'}"
        watch = Watch("docker-networks", student="bench", show=show, docker_host=daemon.host, db_url=db)
        rows: list[tuple[str, float, float, int]] = []
        with watching(watch):
            with arrived:
                arrived.wait_for(lambda: shown, timeout=60)
            for step in labs.NETWORKS_LAB:
                for command in step.commands:
                    if command[0] == "curl" or command[1] in ("ls", "inspect"):
                        continue  # a request to the app, or a read-only command: no event
                    events = len(shown[-1][1].snapshot.timeline)
                    start = len(shown)
                    daemon.docker(*command)
                    returned = time.perf_counter()

                    def seen(n: int = events, first: int = start) -> list[tuple[float, Graded, int]]:
                        return [s for s in shown[first:] if len(s[1].snapshot.timeline) > n]

                    with arrived:
                        arrived.wait_for(lambda: any(p == 0 for *_, p in seen()), timeout=60)
                        found = seen()
                    first_at, _, pending = found[0]
                    done_at, graded, _ = next(s for s in found if s[2] == 0)
                    # At 0 when the watcher showed it before the command returned (a `docker run`
                    # that ends later than its container's events).
                    rows.append(
                        (" ".join(command), max(0.0, first_at - returned), max(0.0, done_at - returned), pending)
                    )
            idle_start, cpu_start = time.perf_counter(), time.process_time()
            time.sleep(5)
            idle_cpu = (time.process_time() - cpu_start) / (time.perf_counter() - idle_start)
        print(f"engine {args.engine}: from the command's return to the checklist showing it")
        print("  inspected  probed   probes run again  command")
        for command, first, done, ran in rows:
            print(f"  {first:7.3f} s {done:7.3f} s  {ran:2}  {command}")
        firsts = [first for _, first, _, _ in rows]
        probed = [done for _, _, done, ran in rows if ran]
        verdict("median, the change shown (inspection):", firsts, SHOWN)
        if probed:
            verdict("median, probes run again and shown: ", probed, PROBED)
        print(f"watcher CPU while the daemon is idle: {idle_cpu * 100:.2f} % of a core")
    finally:
        daemon.stop()
        shutil.rmtree(folder, ignore_errors=True)


def verdict(what: str, seconds: list[float], target: float) -> None:
    median = statistics.median(seconds)
    met = "met" if median <= target else "NOT met"
    print(f"{what} {median:.3f} s ({len(seconds)} commands)  [{met}: <= {target} s]")


if __name__ == "__main__":
    main()
