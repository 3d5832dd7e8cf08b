"""DERIVED golden cases for Docker 29, which cannot be installed here (no Debian suite has it).

Each ``CASE@29-derived/`` is made from the real 28.5 recording ``CASE@28.5/`` by this small
transformation, nothing else, applying the differences Docker 29's release notes and the Engine
API version history give that reach the grader:

1. The engine is 29.0.0, API 1.52, and a client negotiates 1.52 with it.
2. Legacy links set no environment variables (unless the daemon is started with
   ``DOCKER_KEEP_DEPRECATED_LEGACY_LINKS_ENV_VARS=1``): the ``env`` probe's answer in a linked
   container loses the link's variables (``ALIAS_NAME``, ``ALIAS_PORT``, ``ALIAS_PORT_6379_TCP``
   and its ``_ADDR``/``_PORT``/``_PROTO``, ``ALIAS_ENV_*``). ``/etc/hosts`` entries and
   ``HostConfig.Links`` stay.
3. API 1.52's container inspect has no top-level endpoint fields in ``NetworkSettings``
   (``EndpointID``, ``Gateway``, ``GlobalIPv6Address``, ``GlobalIPv6PrefixLen``, ``IPAddress``,
   ``IPPrefixLen``, ``IPv6Gateway``, ``MacAddress``, ``Bridge``): only ``Networks[NAME]`` has them.

(``/events`` with ``Action`` and ``Actor`` only reaches the watcher, not a snapshot: see
tests/test_watch_events.py.)

    python tests/golden/derive29.py    # after record.py; then review the diff
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from golden.record import CASES, expected  # noqa: E402
from grader.snapshot import Snapshot  # noqa: E402

ENGINE = {"Version": "29.0.0", "ApiVersion": "1.52", "MinAPIVersion": "1.44", "NegotiatedApiVersion": "1.52"}
TOP_LEVEL = (
    "EndpointID",
    "Gateway",
    "GlobalIPv6Address",
    "GlobalIPv6PrefixLen",
    "IPAddress",
    "IPPrefixLen",
    "IPv6Gateway",
    "MacAddress",
    "Bridge",
)


def link_variable(name: str, aliases: set[str]) -> bool:
    """Whether ``name`` is one of the variables a legacy link to one of ``aliases`` sets."""
    return any(
        re.fullmatch(rf"{alias}_(NAME|PORT(_\d+_(TCP|UDP|SCTP)(_(ADDR|PORT|PROTO))?)?|ENV_\w+)", name)
        for alias in aliases
    )


def derive(snapshot: Snapshot) -> Snapshot:
    body = snapshot.model_dump(mode="json", exclude={"digest"})
    body["engine"].update(ENGINE)
    for container in body["containers"]:
        for key in TOP_LEVEL:
            container["NetworkSettings"].pop(key, None)
    for probe in body["probes"].values():
        if probe["kind"] != "env" or "vars" not in probe["data"]:
            continue  # not an env probe, or one that could not run
        aliases = {
            link.rsplit(":", 1)[1].upper().replace("-", "_")
            for link in re.findall(r"\+([^+@]+:[^+@:]+)", probe["network"])
        }
        kept = [line for line in probe["output"].splitlines() if not link_variable(line.split("=", 1)[0], aliases)]
        probe["output"] = "\n".join(kept) + "\n"
        probe["data"]["vars"] = {k: v for k, v in probe["data"]["vars"].items() if not link_variable(k, aliases)}
    return Snapshot.model_validate(body).sealed()


def main() -> None:
    for name, (rubric_id, _, _) in CASES.items():
        source, target = HERE / f"{name}@28.5", HERE / f"{name}@29-derived"
        target.mkdir(exist_ok=True)
        (target / "rubric").write_text(rubric_id + "\n")
        snapshot = derive(Snapshot.from_json((source / "snapshot.json").read_text()))
        (target / "snapshot.json").write_text(snapshot.to_json() + "\n")
        (target / "expected.json").write_text(expected(target, rubric_id))
        print(f"derived {target.name}")


if __name__ == "__main__":
    main()
