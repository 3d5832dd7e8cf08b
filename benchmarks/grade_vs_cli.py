"""Benchmark (issue 3): grading lab 2's final state end to end (a cold `grader grade`
process, results stored) against a docker-CLI verify script making the same checks one
command each, run alternately on one bench daemon. Target: grader <= 1/3 of the script.

    python benchmarks/grade_vs_cli.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
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


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    daemon = BenchDaemon("bench-cli").start()
    try:
        images.load_images(daemon, images.images_tar(daemon))
        labs.play(daemon, labs.NETWORKS_LAB)
        env = {**os.environ, "DOCKER_HOST": daemon.host}
        db = Path(tempfile.mkdtemp()) / "bench.db"
        grader_cmd = [
            sys.executable,
            "-m",
            "grader.cli",
            "grade",
            "--rubric",
            "docker-networks",
            "--student",
            "bench",
            "--format",
            "json",
            "--db",
            f"sqlite:///{db}",
        ]
        script_cmd = ["bash", str(ROOT / "benchmarks" / "verify_networks.sh")]
        grader_times, script_times = [], []
        for _ in range(args.rounds):
            t, done = timed(grader_cmd, env)
            assert done.returncode == 0, done.stderr
            grader_times.append(t)
            t, done = timed(script_cmd, env)
            assert "score 20/20" in done.stdout, done.stdout
            script_times.append(t)
        import_time, _ = timed([sys.executable, "-c", "import grader.grading, grader.render, grader.cli"], env)
        from grader.collect import collect
        from grader.rubric import load

        snapshot = collect(load("docker-networks").probes(), docker_host=daemon.host)
        g, s = statistics.median(grader_times), statistics.median(script_times)
        print(f"rounds: {args.rounds} (alternating), lab 2 final state, 20 checks")
        print(f"grader grade (cold process, stored): median {g:.2f} s  {[round(x, 2) for x in grader_times]}")
        print(f"docker-CLI verify script:            median {s:.2f} s  {[round(x, 2) for x in script_times]}")
        print(f"ratio grader/script: {g / s:.3f}  (target <= 0.333)")
        print(
            f"where grader's time goes: interpreter+imports {import_time:.2f} s, "
            f"inspects {snapshot.timings['inspect']:.2f} s, probes {snapshot.timings['probes']:.2f} s "
            f"({len(snapshot.probes)} probes in {len({p.network for p in snapshot.probes.values()})} origins)"
        )
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
