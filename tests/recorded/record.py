"""Record the snapshots of a test rubric's cases from the real bench: each case (its reference,
then each mistake) played with the docker CLI on a clean daemon of each engine, and the daemon
inspected once, with the probes the rubric asks for. ``static-kinds.yaml``'s checks read the
snapshot alone; ``probes.yaml``'s run in the students' containers and on their networks.

    python tests/recorded/record.py [RUBRIC ...]   # static-kinds, probes; starts its own bench daemons

writes ``RUBRIC/CASE@ENGINE.json`` (``reference``, ``mistake-1``, ...), which
tests/test_static_kinds.py and tests/test_probe_kinds.py grade without Docker.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from bench import images  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402
from bench.engines import ENGINES  # noqa: E402
from bench.system import ensure_packages  # noqa: E402

from grader.collect import collect  # noqa: E402
from grader.rubric import load  # noqa: E402

RUBRIC = HERE / "static-kinds.yaml"
PROBES = HERE / "probes.yaml"
# What the cases make besides containers and networks: a named volume, and the host folders
# Docker creates for a bind mount whose source is missing.
VOLUMES = ("webdata",)
HOST_FOLDERS = (Path("/tmp/grader-app-2"), Path("/tmp/grader-data"))


def cases(rubric: Path = RUBRIC) -> dict[str, list[str]]:
    """Case name -> its commands, read from the rubric's YAML as written."""
    body = yaml.safe_load(rubric.read_text())
    found = {"reference": body["reference"]}
    found.update({f"mistake-{n}": m["commands"] for n, m in enumerate(body["mistakes"], 1)})
    return found


def clean(daemon: BenchDaemon) -> None:
    """Remove what the cases made: containers, networks, the volume and the (empty) host folders."""
    daemon.reset()
    daemon.docker("volume", "rm", "-f", *VOLUMES)
    for folder in HOST_FOLDERS:
        if folder.is_dir():
            folder.rmdir()


def play(daemon: BenchDaemon, commands: list[str]) -> None:
    """On a clean daemon, as a student types them (a mistake's command may fail)."""
    clean(daemon)
    for command in commands:
        done = daemon.docker(*shlex.split(command)[1:], check=False)
        if done.returncode:
            print(f"  failed: {command}: {done.stderr.strip()}")


def main(names: list[str]) -> None:
    rubrics = [HERE / f"{name}.yaml" for name in names] or [RUBRIC, PROBES]
    ensure_packages()
    for engine in ENGINES:
        daemon = BenchDaemon(f"kinds{engine.replace('.', '')}", engine=engine).start()
        try:
            images.load_images(daemon, images.images_tar(daemon))
            for rubric in rubrics:
                (HERE / rubric.stem).mkdir(exist_ok=True)
                probes = load(str(rubric)).probes()
                for name, commands in cases(rubric).items():
                    play(daemon, commands)
                    snapshot = collect(probes, docker_host=daemon.host)
                    (HERE / rubric.stem / f"{name}@{engine}.json").write_text(snapshot.to_json() + "\n")
                    print(f"recorded {rubric.stem}/{name}@{engine}")
            clean(daemon)
        finally:
            daemon.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
