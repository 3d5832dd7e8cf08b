"""Benchmark (issue 11): how a grader behaves under faults, on one bench daemon with lab 2
played to its end.

- kills: RUNS `grader grade` runs, each ended by SIGKILL, SIGTERM, SIGHUP or SIGINT at one of
  three moments (0.5 s, 0.9 s, once a probe container exists); counts the probe containers
  left right after each run, those still there LIFE_WAIT seconds after the last one, and the
  runs whose stderr holds a traceback;
- concurrency: 4 graders at once x 10 rounds; counts attempts below full marks.

Run it against this tree and, side by side, against an earlier checkout (``--src DIR``,
e.g. ``git worktree add /tmp/before 42642b4``):

    python benchmarks/faults.py [--src DIR] [--runs 32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402

SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
MOMENTS = (0.5, 0.9, "probing")
LIFE_WAIT = 70  # past the probe containers' life (60 s) of this tree


def probes(daemon: BenchDaemon) -> list[str]:
    return daemon.docker("ps", "-aq", "--filter", "label=grader.probe=1").stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser()
    # Run in that tree: `python -m` puts the working folder first on the import path.
    parser.add_argument("--src", type=Path, default=ROOT, help="tree whose grader package runs")
    parser.add_argument("--runs", type=int, default=32)
    args = parser.parse_args()
    src = str(args.src.resolve())
    env = {**os.environ, "PYTHONPATH": src}
    daemon = BenchDaemon("bench-faults").start()
    folder = Path(tempfile.mkdtemp())
    try:
        images.load_images(daemon, images.images_tar(daemon))
        labs.play(daemon, labs.NETWORKS_LAB)
        db = f"sqlite:///{folder / 'faults.db'}"
        cmd = [sys.executable, "-m", "grader.cli", "grade", "--rubric", "docker-networks", "--student", "s"]
        cmd += ["--docker-host", daemon.host, "--db", db, "--format", "json"]

        left_after: dict[str, int] = {}
        tracebacks: dict[str, int] = {}
        for run in range(args.runs):
            signum, moment = SIGNALS[run % len(SIGNALS)], MOMENTS[(run // len(SIGNALS)) % len(MOMENTS)]
            before = set(probes(daemon))
            proc = subprocess.Popen(cmd, env=env, cwd=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if moment == "probing":
                deadline = time.monotonic() + 20
                while set(probes(daemon)) <= before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
            else:
                time.sleep(moment)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=120)
            left = len(set(probes(daemon)) - before)
            left_after[signum.name] = left_after.get(signum.name, 0) + left
            tracebacks[signum.name] = tracebacks.get(signum.name, 0) + ("Traceback" in err)
        print(f"kills: {args.runs} runs ({args.runs // len(SIGNALS)} per signal, moments {MOMENTS})")
        for name in left_after:
            print(
                f"  {name:8} probe containers left right after: {left_after[name]:3}   tracebacks: {tracebacks[name]}"
            )
        print(f"  left right after, all signals: {sum(left_after.values())}")
        time.sleep(LIFE_WAIT)
        print(f"  probe containers still there {LIFE_WAIT} s later: {len(probes(daemon))}")
        proc = subprocess.run(cmd, env=env, cwd=src, capture_output=True, text=True, timeout=120)
        print(f"  after one more (complete) run: {len(probes(daemon))}")
        daemon.docker("rm", "-f", *probes(daemon)) if probes(daemon) else None

        wrong, total = 0, 0
        started = time.perf_counter()
        for _ in range(10):
            procs = [
                subprocess.Popen(cmd, env=env, cwd=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)
            ]
            for proc in procs:
                out, _ = proc.communicate(timeout=120)
                report = json.loads(out)
                total += 1
                wrong += report["score"] != report["max_score"]
        print(
            f"concurrency: 4 graders x 10 rounds: {wrong} of {total} attempts below full marks "
            f"({time.perf_counter() - started:.1f} s)"
        )
    finally:
        daemon.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
