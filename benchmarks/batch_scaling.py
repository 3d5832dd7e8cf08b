"""Benchmark (issue 5): grading N daemons with N workers takes at most 1.5x the time of
one daemon (N = 1, 3, 6), and the per-daemon overhead of the batch machinery.

Each daemon is a bench "student machine" (its own dockerd in its own network namespace)
with lab 2 played to its end. Batches run in this process (no interpreter start-up in
the figures), into a fresh SQLite store each. Here every daemon shares the machine's cores,
unlike students' machines: each probe container a daemon starts costs this machine CPU. So
the batch is timed twice: with lab 2's full rubric, and with its checks that need no probe
(inspects only), where the daemons' own work is light and the batch machinery shows. Each
line also gives the CPU all processes spent per daemon (the daemons' included) and the floor
that puts on the batch's time: all that CPU divided by the cores.

    python benchmarks/batch_scaling.py [--sizes 1,3,6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import yaml  # noqa: E402
from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402

from grader.batch import Batch  # noqa: E402
from grader.collect import collect, connect  # noqa: E402
from grader.evaluate import evaluate  # noqa: E402
from grader.rubric import load  # noqa: E402
from grader.store import Store  # noqa: E402

CORES = os.cpu_count() or 1


def machine_cpu() -> float:
    """CPU-seconds all cores have been busy since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def inspect_only(workdir: Path) -> Path:
    """Lab 2's rubric without the checks that need probes."""
    rubric = load("docker-networks")
    no_probe = {c.id for _, c in rubric.checks() if not c.probes()}
    data = rubric.model_dump(mode="json", exclude_none=True)
    for task in data["tasks"]:
        task["checks"] = [c for c in task["checks"] if c["id"] in no_probe]
        for c in task["checks"]:
            c["needs"] = [n for n in c.get("needs", []) if n in no_probe]
    data["tasks"] = [t for t in data["tasks"] if t["checks"]]
    data["id"] = "docker-networks-inspect"
    path = workdir / "inspect-only.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_batch(rubric: str, daemons: list[BenchDaemon], workdir: Path) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU seconds, the machine's CPU seconds: every process's,
    the daemons' included)."""
    roster = workdir / f"roster{len(daemons)}.csv"
    roster.write_text("student,docker_host\n" + "".join(f"s{n},{d.host}\n" for n, d in enumerate(daemons)))
    run = Batch(rubric, roster, f"sqlite:///{tempfile.mkdtemp(dir=workdir)}/batch.db", workers=len(daemons))
    started, cpu, machine = time.perf_counter(), time.process_time(), machine_cpu()
    results = run.run()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert all(r.status == "graded" and r.score == r.max_score for r in results), results
    return took, cpu, machine_cpu() - machine


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
        print(f"cores: {CORES}, rounds: {args.rounds} (medians), lab 2 final state on every daemon")
        for label, rubric in [("full rubric", "docker-networks"), ("inspect-only", str(inspect_only(workdir)))]:
            run_batch(rubric, daemons[:1], workdir)  # warm-up: imports, first probe containers
            runs = {n: [run_batch(rubric, daemons[:n], workdir) for _ in range(args.rounds)] for n in sizes}
            times = {n: statistics.median(r[0] for r in runs[n]) for n in sizes}
            for n in sizes:
                ratio = times[n] / times[sizes[0]]
                cpu = statistics.median(r[1] for r in runs[n]) / n
                machine = statistics.median(r[2] for r in runs[n])
                # The least time the CPU work of this batch (the daemons' included) can take on these cores.
                floor = machine / CORES
                print(
                    f"{label}: N={n}: {times[n]:.2f} s  ({ratio:.2f}x N={sizes[0]}; target <= 1.5x); "
                    f"grader CPU {cpu:.3f} s per daemon; all processes {machine / n:.2f} CPU-s per daemon; "
                    f"floor on {CORES} cores {floor:.2f} s ({floor / times[sizes[0]]:.2f}x)"
                )
        alone = statistics.median(direct(daemons[0], workdir) for _ in range(args.rounds))
        batch_one = statistics.median(run_batch("docker-networks", daemons[:1], workdir)[0] for _ in range(args.rounds))
        print(f"one daemon without the batch (connect, collect, evaluate, store): {alone:.2f} s")
        print(f"batch machinery per daemon (N=1 batch minus direct): {batch_one - alone:+.3f} s")
    finally:
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
