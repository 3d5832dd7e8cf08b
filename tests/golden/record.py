"""Record the golden cases from the real bench: play each case's lab on each engine, take
one snapshot with the rubric's probes, and write snapshot.json and expected.json (the Outcome):
``CASE/`` from Docker 20.10, ``CASE@28.5/`` from Docker 28.5. ``derive29.py`` makes the Docker
29 cases from the 28.5 ones.

    python tests/golden/record.py             # every case (starts its own bench daemons)
    python tests/golden/record.py --outcomes  # keep the snapshots, re-evaluate (evaluators changed)

The evaluator tests (tests/test_golden.py) then run without Docker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402
from bench.engines import DEFAULT, ENGINES  # noqa: E402
from bench.system import ensure_packages  # noqa: E402

from grader.collect import collect  # noqa: E402
from grader.evaluate import evaluate  # noqa: E402
from grader.rubric import load  # noqa: E402

# case -> (rubric, rewrite of the students' commands, None for the reference solution; play at all?)
CASES: dict[str, tuple[str, labs.Rewrite | None, bool]] = {
    "links-reference": ("docker-links", None, True),
    "links-empty": ("docker-links", None, False),
    "networks-reference": ("docker-networks", None, True),
    "networks-typo": ("docker-networks", labs.replace("backend-network", "backend_network"), True),
    "networks-forgot-connect": (
        "docker-networks",
        lambda c: None if c[:2] == ("network", "connect") and "db" in c else c,
        True,
    ),
}


def expected(case: Path, rubric_id: str) -> str:
    from grader.snapshot import Snapshot

    snapshot = Snapshot.from_json((case / "snapshot.json").read_text())
    outcome = evaluate(load(rubric_id), snapshot)
    # The messages' templates (``phrases``) are left out: tests/test_i18n.py checks that each says
    # its message, so a change of wording shows here once, in the message.
    dumped = outcome.model_dump(mode="json", exclude={"checks": {"__all__": {"phrases"}}})
    return json.dumps(dumped, indent=1, sort_keys=True) + "\n"


def folder(name: str, engine: str) -> Path:
    return HERE / (name if engine == DEFAULT else f"{name}@{engine}")


def main() -> None:
    if sys.argv[1:] == ["--outcomes"]:  # evaluators changed: keep the snapshots, redo the outcomes
        for case in sorted(p for p in HERE.iterdir() if (p / "snapshot.json").exists()):
            (case / "expected.json").write_text(expected(case, (case / "rubric").read_text().strip()))
            print(f"re-evaluated {case.name}")
        return
    ensure_packages()
    for engine in ENGINES:
        daemon = BenchDaemon(f"golden{engine.replace('.', '')}", engine=engine).start()
        try:
            images.load_images(daemon, images.images_tar(daemon))
            for name, (rubric_id, rewrite, play) in CASES.items():
                daemon.reset()
                if play:
                    labs.play(daemon, labs.LABS[rubric_id], rewrite=rewrite)
                snapshot = collect(load(rubric_id).probes(), docker_host=daemon.host)
                case = folder(name, engine)
                case.mkdir(exist_ok=True)
                (case / "rubric").write_text(rubric_id + "\n")
                (case / "snapshot.json").write_text(snapshot.to_json() + "\n")
                (case / "expected.json").write_text(expected(case, rubric_id))
                print(f"recorded {case.name}")
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
