"""Benchmark (issues 3, 12): grading lab 2's final state end to end (a cold `grader grade`
process, results stored) against a docker-CLI verify script making the same checks one
command each, run alternately on one bench daemon of each engine (Docker 20.10 and 28.5).
Prints per engine the medians, their ratio, the grader process's CPU and where its time goes.

    python benchmarks/grade_vs_cli.py [--rounds 5] [--engine 20.10 --engine 28.5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402
from bench.engines import ENGINES  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, CPU time (user + system) of the process, and how it ended."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engine", action="append", choices=ENGINES, help="default: every engine")
    args = parser.parse_args()
    for engine in args.engine or ENGINES:
        measure(engine, args.rounds)


def measure(engine: str, rounds: int) -> None:
    daemon = BenchDaemon(f"bench-cli{engine.replace('.', '')}", engine=engine).start()
    try:
        images.load_images(daemon, images.images_tar(daemon))
        labs.play(daemon, labs.NETWORKS_LAB)
        env = {**os.environ, "DOCKER_HOST": daemon.host}
        db = Path(tempfile.mkdtemp()) / "bench.db"
        grader_cmd = [sys.executable, "-m", "grader.cli", "grade", "--rubric", "docker-networks", "--student", "bench"]
        grader_cmd += ["--format", "json", "--db", f"sqlite:///{db}"]
        script_cmd = ["bash", str(ROOT / "benchmarks" / "verify_networks.sh")]
        grader_times, grader_cpu, script_times = [], [], []
        for _ in range(rounds):
            wall, cpu, done = timed(grader_cmd, env)
            assert done.returncode == 0, done.stderr
            grader_times.append(wall)
            grader_cpu.append(cpu)
            wall, _, done = timed(script_cmd, env)
            assert "score 20/20" in done.stdout, done.stdout
            script_times.append(wall)
        import_time, import_cpu, _ = timed(
            [sys.executable, "-c", "import grader.grading, grader.render, grader.cli"], env
        )
        from grader.collect import collect
        from grader.rubric import load

        snapshot = collect(load("docker-networks").probes(), docker_host=daemon.host)
        g, s = statistics.median(grader_times), statistics.median(script_times)
        print(f"Docker {engine}: {rounds} rounds (alternating), lab 2 final state, 20 checks")
        print(f"  grader grade (cold process, stored): median {g:.2f} s  {[round(x, 2) for x in grader_times]}")
        print(f"  docker-CLI verify script:            median {s:.2f} s  {[round(x, 2) for x in script_times]}")
        print(f"  ratio grader/script: {g / s:.3f}")
        print(f"  grader process CPU: median {statistics.median(grader_cpu):.2f} s (imports alone {import_cpu:.2f} s)")
        print(
            f"  where its time goes: interpreter+imports {import_time:.2f} s, "
            f"inspects {snapshot.timings['inspect']:.2f} s, probes {snapshot.timings['probes']:.2f} s "
            f"({len(snapshot.probes)} probes in {len({p.network for p in snapshot.probes.values()})} origins)"
        )
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
