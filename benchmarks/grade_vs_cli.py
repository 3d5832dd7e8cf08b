"""Benchmark (issues 3, 12, 20): grading lab 2's final state end to end (a cold `grader grade`
process, results stored) against a docker-CLI verify script making the same checks one
command each, run alternately on one bench daemon of each engine (Docker 20.10 and 28.5).
Prints per engine the medians, their ratio, the grader process's CPU and where its time goes,
and whether issue 20's targets are met: the ratio at most 0.33 on 28.5 and 0.4 on 20.10 (the
ratio is what counts on a busy machine), `grader --help` at most 0.15 s, and, with
``--baseline DIR`` (the source tree of an earlier grader, e.g. from `git archive`, timed in the
same rounds), the grader process's CPU at most 40 % of the earlier one's. Both trees' sources
are compiled first, as an install does: with PYTHONDONTWRITEBYTECODE set (the bench's shell sets
it), each timed process would otherwise compile the grader's modules again, about 0.1 CPU-s.

    python benchmarks/grade_vs_cli.py [--rounds 5] [--engine 20.10 --engine 28.5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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

RATIO = {"28.5": 0.33, "20.10": 0.4}  # issue 20's targets, grader / script
CPU_SHARE = 0.4  # of the baseline grader's CPU
HELP = 0.15  # seconds

# One grade's steps in a fresh interpreter, one after the other, as `grader grade` takes them
# (which overlaps the store's opening with the probes, and the probe containers' removal with
# what follows them): wall and CPU seconds of each.
PHASES = """
import json, sys, time
marks = [("start", time.perf_counter(), time.process_time())]
def mark(name):
    marks.append((name, time.perf_counter(), time.process_time()))
from grader.collect import collect, connect
from grader.evaluate import evaluate
from grader.probe.runner import Cleanup
from grader.rubric import load
mark("imports: grading")
from grader import render, store
mark("imports: store, output")
rubric = load("docker-networks")
client = connect()
mark("connect")
cleanup = Cleanup()
snapshot = collect(rubric.probes(), client=client, cleanup=cleanup)
mark("inspect and probes")
outcome = evaluate(rubric, snapshot)
mark("evaluate")
db = store.Store(sys.argv[1])
mark("store: open")
db.record("bench-phases", rubric, snapshot, outcome, "grade")
mark("store: record")
cleanup.wait()
mark("probe removal, what is left of it")
print(json.dumps({"marks": marks, "timings": snapshot.timings, "probes": len(snapshot.probes)}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, CPU time (user + system) of the process, and how it ended. It runs in the
    tree on its PYTHONPATH: `python -m` puts the current folder first on the path, so run from
    this checkout a baseline would time this checkout's grader."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=env["PYTHONPATH"])
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engine", action="append", choices=ENGINES, help="default: every engine")
    parser.add_argument("--baseline", type=Path, help="source tree of an earlier grader, timed in the same rounds")
    args = parser.parse_args()
    for tree in (ROOT, args.baseline):
        if tree is not None:  # as an install does: no process compiles the grader's sources while timed
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "grader")], check=True)
    help_wall, help_cpu = interpreter(args.rounds, [sys.executable, "-m", "grader.cli", "--help"], ROOT)
    bare_wall, bare_cpu = interpreter(args.rounds, [sys.executable, "-c", "pass"], ROOT)
    verdict(
        f"grader --help: best {help_wall:.3f} s, {help_cpu:.3f} CPU-s "
        f"(a bare interpreter: {bare_wall:.3f} s, {bare_cpu:.3f} CPU-s)",
        help_wall <= HELP,
        f"<= {HELP} s",
    )
    if args.baseline:
        base_wall, base_cpu = interpreter(args.rounds, [sys.executable, "-m", "grader.cli", "--help"], args.baseline)
        print(f"  baseline's grader --help: best {base_wall:.3f} s, {base_cpu:.3f} CPU-s")
    for engine in args.engine or ENGINES:
        measure(engine, args.rounds, args.baseline)


def interpreter(rounds: int, cmd: list[str], tree: Path) -> tuple[float, float]:
    """The best wall and CPU time of ``cmd`` over ``rounds`` runs with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    runs = [timed(cmd, env)[:2] for _ in range(rounds)]
    return min(w for w, _ in runs), min(c for _, c in runs)


def verdict(line: str, met: bool, target: str) -> None:
    print(f"{line}  [{'met' if met else 'NOT met'}: {target}]")


def measure(engine: str, rounds: int, baseline: Path | None) -> None:
    daemon = BenchDaemon(f"bench-cli{engine.replace('.', '')}", engine=engine).start()
    folder = Path(tempfile.mkdtemp())
    try:
        images.load_images(daemon, images.images_tar(daemon))
        labs.play(daemon, labs.NETWORKS_LAB)
        env = {**os.environ, "DOCKER_HOST": daemon.host, "PYTHONPATH": str(ROOT)}
        grader_cmd = [sys.executable, "-m", "grader.cli", "grade", "--rubric", "docker-networks", "--student", "bench"]
        grader_cmd += ["--format", "json", "--db", f"sqlite:///{folder / 'bench.db'}"]
        script_cmd = ["bash", str(ROOT / "benchmarks" / "verify_networks.sh")]
        runs: dict[str, list[tuple[float, float]]] = {"grader": [], "script": [], "baseline": []}
        base_cmd = [*grader_cmd[:-1], f"sqlite:///{folder / 'baseline.db'}"]
        base_env = {**env, "PYTHONPATH": str(baseline)} if baseline else env
        for _ in range(rounds):
            wall, cpu, done = timed(grader_cmd, env)
            assert done.returncode == 0, done.stderr
            runs["grader"].append((wall, cpu))
            wall, cpu, done = timed(script_cmd, env)
            assert "score 20/20" in done.stdout, done.stdout
            runs["script"].append((wall, cpu))
            if baseline:
                wall, cpu, done = timed(base_cmd, base_env)
                assert done.returncode == 0, done.stderr
                runs["baseline"].append((wall, cpu))
        phases = json.loads(
            subprocess.run(
                [sys.executable, "-c", PHASES, f"sqlite:///{folder / 'bench.db'}"],  # made by the rounds
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        g, s = (statistics.median(w for w, _ in runs[name]) for name in ("grader", "script"))
        cpu = statistics.median(c for _, c in runs["grader"])
        print(f"Docker {engine}: {rounds} rounds (alternating), lab 2 final state, 20 checks")
        print(f"  grader grade (cold process, stored): median {g:.2f} s  {[round(w, 2) for w, _ in runs['grader']]}")
        print(f"  docker-CLI verify script:            median {s:.2f} s  {[round(w, 2) for w, _ in runs['script']]}")
        verdict(f"  ratio grader/script: {g / s:.3f}", g / s <= RATIO[engine], f"<= {RATIO[engine]}")
        print(f"  grader process CPU: median {cpu:.2f} s  {[round(c, 2) for _, c in runs['grader']]}")
        if baseline:
            b = statistics.median(w for w, _ in runs["baseline"])
            base_cpu = statistics.median(c for _, c in runs["baseline"])
            print(f"  baseline grader: median {b:.2f} s (ratio {b / s:.3f}), CPU {base_cpu:.2f} s")
            share = cpu / base_cpu
            verdict(f"  CPU, this grader / baseline: {share:.2f}", share <= CPU_SHARE, f"<= {CPU_SHARE}")
        print("  where its time goes (the steps one after the other, in a fresh interpreter; wall / CPU):")
        previous = phases["marks"][0]
        print(f"    {'interpreter (before the first import)':38} {previous[2]:.3f} CPU-s")
        for name, wall, cpu_at in phases["marks"][1:]:
            print(f"    {name:38} {wall - previous[1]:.3f} s / {cpu_at - previous[2]:.3f} CPU-s")
            previous = (name, wall, cpu_at)
        t = phases["timings"]
        print(f"    (of inspect and probes: inspect {t['inspect']:.3f} s; probes {t['probes']:.3f} s from their start")
        print(f"     alongside the inspects; {phases['probes']} probes)")
    finally:
        daemon.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
