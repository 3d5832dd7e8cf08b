"""Benchmark (issue 5): grading N daemons with N workers takes at most 1.5x the time of
one daemon (N = 1, 3, 6), and the per-daemon overhead of the batch machinery.

Each daemon is a bench "student machine" (its own dockerd in its own network namespace)
with lab 2 played to its end. Batches run in this process (no interpreter start-up in
the figures), into a fresh SQLite store each.

    python benchmarks/batch_scaling.py [--sizes 1,3,6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402

from grader.batch import Batch  # noqa: E402
from grader.collect import collect, connect  # noqa: E402
from grader.evaluate import evaluate  # noqa: E402
from grader.rubric import load  # noqa: E402
from grader.store import Store  # noqa: E402


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_batch(daemons: list[BenchDaemon], workdir: Path) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU seconds, the machine's busy fraction)."""
    roster = workdir / f"roster{len(daemons)}.csv"
    roster.write_text("student,docker_host\n" + "".join(f"s{n},{d.host}\n" for n, d in enumerate(daemons)))
    store = Store(f"sqlite:///{tempfile.mkdtemp(dir=workdir)}/batch.db")
    started, cpu, (busy, total) = time.perf_counter(), time.process_time(), machine_busy()
    results = Batch("docker-networks", roster, store, workers=len(daemons)).run()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    busy_after, total_after = machine_busy()
    assert all(r.status == "graded" and r.score == r.max_score for r in results), results
    return took, cpu, (busy_after - busy) / (total_after - total)


def direct(daemon: BenchDaemon, workdir: Path) -> float:
    """The same work without the batch: connect, collect, evaluate, store."""
    rubric = load("docker-networks")
    store = Store(f"sqlite:///{tempfile.mkdtemp(dir=workdir)}/direct.db")
    started = time.perf_counter()
    client = connect(daemon.host)
    snapshot = collect(rubric.probes(), client=client)
    client.close()
    store.record("s0", rubric, snapshot, evaluate(rubric, snapshot), "grade")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,3,6")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp())
    daemons: list[BenchDaemon] = []
    try:
        for n in range(max(sizes)):
            daemon = BenchDaemon(f"scale{n}-{os.getpid()}").start()
            daemons.append(daemon)
            images.load_images(daemon, images.images_tar(daemon))
            labs.play(daemon, labs.NETWORKS_LAB)
        run_batch(daemons[:1], workdir)  # warm-up: imports, first probe containers
        runs = {n: [run_batch(daemons[:n], workdir) for _ in range(args.rounds)] for n in sizes}
        times = {n: statistics.median(r[0] for r in runs[n]) for n in sizes}
        alone = statistics.median(direct(daemons[0], workdir) for _ in range(args.rounds))
        print(f"cores: {os.cpu_count()}, rounds: {args.rounds} (medians), lab 2 final state on every daemon")
        for n in sizes:
            ratio = times[n] / times[sizes[0]]
            cpu = statistics.median(r[1] for r in runs[n]) / n
            busy = statistics.median(r[2] for r in runs[n])
            print(
                f"N={n}: {n} daemons, {n} workers: {times[n]:.2f} s  ({ratio:.2f}x N={sizes[0]}; target <= 1.5x); "
                f"grader CPU {cpu:.2f} s per daemon; machine {busy:.0%} busy (the bench's dockerds share its cores)"
            )
        print(f"one daemon without the batch (connect, collect, evaluate, store): {alone:.2f} s")
        print(f"batch machinery per daemon (N=1 batch minus direct): {times[1] - alone:+.3f} s")
    finally:
        for daemon in daemons:
            daemon.stop()


if __name__ == "__main__":
    main()
