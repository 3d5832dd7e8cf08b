"""Record the snapshots of a rubric's cases from the real bench: each case (its reference, then
each mistake) played as ``grader rubric test`` plays it, on a clean daemon of each engine, and
the daemon inspected once, with the probes the rubric asks for.

    python tests/recorded/record.py [NAME ...]    # starts its own bench daemons

writes ``NAME/CASE@ENGINE.json`` (``reference``, ``mistake-1``, ...) for each rubric of
``RUBRICS`` (all by default), which tests grade without Docker: ``static-kinds`` (the check
kinds read from the snapshot alone: tests/test_static_kinds.py), ``probes`` (checks run in the
students' containers and on their networks: tests/test_probe_kinds.py) and ``compose`` (the
bundled Compose lab, by Compose's labels: tests/test_compose.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from bench import images  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402
from bench.engines import ENGINES, compose_config  # noqa: E402
from bench.system import ensure_packages  # noqa: E402

from grader.collect import collect  # noqa: E402
from grader.rubric import load  # noqa: E402
from grader.selftest import cases, play  # noqa: E402

RUBRIC = HERE / "static-kinds.yaml"
PROBES = HERE / "probes.yaml"
RUBRICS = {"static-kinds": RUBRIC, "probes": PROBES, "compose": HERE.parent.parent / "rubrics" / "docker-compose.yaml"}
# What the cases make besides containers and networks: a named volume, and the host folders
# Docker creates for a bind mount whose source is missing.
VOLUMES = ("webdata",)
HOST_FOLDERS = (Path("/tmp/grader-app-2"), Path("/tmp/grader-data"))


def clean(daemon: BenchDaemon) -> None:
    """Remove what the cases made: containers, networks, the volume and the (empty) host folders."""
    daemon.reset()
    daemon.docker("volume", "rm", "-f", *VOLUMES)
    for folder in HOST_FOLDERS:
        if folder.is_dir():
            folder.rmdir()


def main() -> None:
    ensure_packages()
    os.environ["DOCKER_CONFIG"] = str(compose_config())  # `docker compose` (engines.compose_config)
    os.environ["COMPOSE_PROJECT_NAME"] = "shop"  # the same names in every recording
    chosen = sys.argv[1:] or list(RUBRICS)
    for engine in ENGINES:
        daemon = BenchDaemon(f"record{os.getpid()}-{engine}", engine=engine).start()  # beside other sessions'
        try:
            images.load_images(daemon, images.images_tar(daemon))
            for folder in chosen:
                rubric = load(str(RUBRICS[folder]))
                (HERE / folder).mkdir(exist_ok=True)
                for number, (_, steps, _) in enumerate(cases(rubric)):
                    name = f"mistake-{number}" if number else "reference"
                    clean(daemon)
                    for problem in play(daemon.host, steps, lambda port: None):
                        print(f"  failed: {problem}")  # a mistake's command may fail, as a student's
                    snapshot = collect(rubric.probes(), docker_host=daemon.host)
                    (HERE / folder / f"{name}@{engine}.json").write_text(snapshot.to_json() + "\n")
                    print(f"recorded {folder}/{name}@{engine}")
            clean(daemon)
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
