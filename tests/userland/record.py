"""Record what the probe images print for the grader's name lookups, on the real bench.

Lab 2 is played on a daemon of each engine; then the ``resolve`` probe's own script (the
grader's command, its timeout and output framing) runs in a container of each probe image on
each network, and its exit code and output are kept with the addresses ``docker inspect``
gives. ``alpine`` is glibc's ``getent``; ``alpine-busybox`` has no ``getent``, so busybox's
``nslookup`` answers, with its resolver's ``Server:``/``Address:`` lines first.

    python tests/userland/record.py

tests/test_userland.py parses the recording without Docker.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from bench import images, labs  # noqa: E402
from bench.daemon import BenchDaemon  # noqa: E402
from bench.engines import ENGINES  # noqa: E402
from bench.system import ensure_packages  # noqa: E402

from grader.probe.script import command_for, script, split_sections  # noqa: E402
from grader.probe.spec import Origin, ProbeSpec, timeout_for  # noqa: E402

OUT = HERE / "resolve.json"
PROBE_IMAGES = ("alpine", "alpine-busybox")
# (network, name): a name, an alias, a name only on another network, none at all.
LOOKUPS = [
    ("backend-network", "redis"),
    ("frontend-network2", "db"),
    ("frontend-network2", "redis"),
    ("frontend-network", "redis"),
]
NONCE = "0" * 32  # the recording is data, nothing to forge here


def addresses(daemon: BenchDaemon, network: str, name: str) -> list[str]:
    """What a correct lookup finds: the address of the container that answers to ``name`` on
    ``network`` (redis, also as db), or nothing."""
    inspected = json.loads(daemon.docker("inspect", "redis").stdout)[0]["NetworkSettings"]["Networks"]
    endpoint = inspected.get(network)
    return [endpoint["IPAddress"]] if endpoint and name in ("redis", *(endpoint["Aliases"] or [])) else []


def record(daemon: BenchDaemon) -> list[dict[str, object]]:
    daemon.reset()
    labs.play(daemon, labs.NETWORKS_LAB)
    version = daemon.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    cases: list[dict[str, object]] = []
    for image in PROBE_IMAGES:
        for network, name in LOOKUPS:
            spec = ProbeSpec(action="resolve", origin=Origin(network=network), host=name)
            command = command_for(spec, None)
            text = script([(command, timeout_for(spec))], NONCE)
            done = daemon.docker("run", "--rm", f"--net={network}", image, "sh", "-c", text)
            [section] = split_sections(done.stdout, NONCE, 1)
            assert section is not None, done.stdout
            cases.append(
                {
                    "engine": version,
                    "image": image,
                    "network": network,
                    "name": name,
                    "command": command,
                    "rc": section.rc,
                    "output": section.output,
                    "addresses": addresses(daemon, network, name),
                }
            )
    return cases


def main() -> None:
    ensure_packages()
    cases: list[dict[str, object]] = []
    busybox = ""
    for engine in ENGINES:
        daemon = BenchDaemon(f"userland-{engine}-{os.getpid()}", engine=engine).start()
        try:
            images.load_images(daemon, images.images_tar(daemon))
            busybox = daemon.docker("run", "--rm", "alpine-busybox", "busybox").stdout.splitlines()[0]
            cases += record(daemon)
        finally:
            daemon.stop()
    OUT.write_text(json.dumps({"busybox": busybox, "cases": cases}, indent=1) + "\n")
    print(f"recorded {len(cases)} lookups in {OUT}")


if __name__ == "__main__":
    main()
