"""Reading facts out of a Snapshot's raw inspect JSON, for every engine shape.

Engines differ: from API 1.45 a container's network ``Aliases`` no longer holds its short
id, and ``DNSNames`` (API 1.44+) lists every name it answers to. These helpers read both,
so evaluators never touch raw keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from .snapshot import Snapshot

Container = dict[str, Any]


class Selector(BaseModel):
    """Which container a check is about: by name (``redis``) or by image (the app has none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    image: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_of(self) -> Selector:
        if (self.name is None) == (self.image is None):
            raise ValueError("give exactly one of name or image")
        return self

    def __str__(self) -> str:
        return self.name if self.name is not None else f"image {self.image}"


def name_of(container: Container) -> str:
    return container.get("Name", "").lstrip("/")


def short_id(container: Container) -> str:
    return container.get("Id", "")[:12]


def normalize_image(ref: str) -> str:
    """``redis`` and ``docker.io/library/redis:latest`` name the same image."""
    ref = ref.removeprefix("docker.io/").removeprefix("library/")
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in ref else f"{ref}:latest"


def image_tags(snapshot: Snapshot, container: Container) -> set[str]:
    return _index(snapshot).tags[container.get("Id", "")]


def is_running(container: Container) -> bool:
    return bool(container.get("State", {}).get("Running"))


def state_of(container: Container) -> str:
    return container.get("State", {}).get("Status", "unknown")


def is_probe(container: Container) -> bool:
    return (container.get("Config", {}).get("Labels") or {}).get("grader.probe") == "1"


def students_containers(snapshot: Snapshot) -> list[Container]:
    return _index(snapshot).students


def select(snapshot: Snapshot, selector: Selector) -> list[Container]:
    """Matching containers, running ones first (a stopped twin is weaker evidence)."""
    index = _index(snapshot)
    if selector.name is not None:
        return list(index.by_name.get(selector.name, ()))
    return list(index.by_tag.get(normalize_image(selector.image or ""), ()))


@dataclass
class _Index:
    """The lookups every evaluator makes, built once per snapshot."""

    students: list[Container]
    tags: dict[str, set[str]]  # container id -> the image names it runs
    by_name: dict[str, list[Container]] = field(default_factory=dict)
    by_tag: dict[str, list[Container]] = field(default_factory=dict)


_last: list[tuple[Snapshot, _Index]] = []  # the snapshot being evaluated and its index


def _index(snapshot: Snapshot) -> _Index:
    for seen, index in _last:
        if seen is snapshot:
            return index
    images = {i.get("Id"): {normalize_image(t) for t in i.get("RepoTags") or []} for i in snapshot.images}
    students = [c for c in snapshot.containers if not is_probe(c)]
    tags = {
        c.get("Id", ""): {normalize_image(c.get("Config", {}).get("Image", "")), *images.get(c.get("Image"), ())}
        for c in snapshot.containers
    }
    index = _Index(students, tags)
    for c in sorted(students, key=lambda c: (not is_running(c), c.get("Created", ""))):
        index.by_name.setdefault(name_of(c), []).append(c)
        for tag in tags[c.get("Id", "")]:
            index.by_tag.setdefault(tag, []).append(c)
    _last[:] = [(snapshot, index)]
    return index


def networks_of(container: Container) -> dict[str, dict[str, Any]]:
    return container.get("NetworkSettings", {}).get("Networks") or {}


def aliases_on(container: Container, endpoint: dict[str, Any]) -> list[str]:
    """User-given aliases on one network, without the names Docker adds by itself."""
    automatic = {short_id(container), name_of(container), container.get("Id", "")}
    hostname = container.get("Config", {}).get("Hostname")
    if hostname:
        automatic.add(hostname)
    names = list(endpoint.get("Aliases") or []) + list(endpoint.get("DNSNames") or [])
    seen: list[str] = []
    for alias in names:
        if alias not in automatic and alias not in seen:
            seen.append(alias)
    return seen


def address_on(container: Container, network: str) -> str | None:
    endpoint = networks_of(container).get(network)
    return (endpoint or {}).get("IPAddress") or None


def address_of(snapshot: Snapshot, selector: Selector, network: str) -> str | None:
    """The address a selected container has on a network now (a stopped one has none)."""
    return next((a for c in select(snapshot, selector) if (a := address_on(c, network))), None)


def network(snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    return next((n for n in snapshot.networks if n.get("Name") == name), None)


def links_of(container: Container) -> list[tuple[str, str]]:
    """Legacy links as (target name, alias): ``/redis-server:/app/redis`` -> (redis-server, redis)."""
    pairs = []
    for link in container.get("HostConfig", {}).get("Links") or []:
        target, _, inner = link.partition(":")
        pairs.append((target.lstrip("/"), inner.rsplit("/", 1)[-1]))
    return pairs


def published(container: Container) -> dict[str, list[str]]:
    """Container port -> host ports asked for (HostConfig) or bound (NetworkSettings)."""
    result: dict[str, list[str]] = {}
    for source in (
        container.get("HostConfig", {}).get("PortBindings") or {},
        container.get("NetworkSettings", {}).get("Ports") or {},
    ):
        for port, bindings in source.items():
            for binding in bindings or []:
                host_port = binding.get("HostPort")
                if host_port and host_port not in result.setdefault(port, []):
                    result[port].append(host_port)
    return result


def engine_version(snapshot: Snapshot) -> tuple[int, ...]:
    raw = snapshot.engine.get("Version", "0")
    parts = []
    for piece in raw.split("+")[0].split("-")[0].split("."):
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)
