"""Reading facts out of a Snapshot's raw inspect JSON, for every engine shape.

Engines differ: from API 1.45 a container's network ``Aliases`` no longer holds its short
id, and ``DNSNames`` (API 1.44+) lists every name it answers to. These helpers read both,
so evaluators never touch raw keys. A submitted bundle can carry any shape (``Config`` a
list, ``Name`` a number): a value of the wrong type reads as missing, never as an exception.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from .snapshot import Snapshot
from .text import head

Container = dict[str, Any]


# The labels Docker Compose (v1 and v2) puts on what it makes: its names differ by version
# (``shop-web-1``, ``shop_web_1``), its labels do not.
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NETWORK_LABEL = "com.docker.compose.network"


def _optional(description: str) -> Any:
    """An optional field dumped only where given: rubrics without it keep their digest."""
    return Field(None, min_length=1, description=description, exclude_if=lambda value: value is None)


class Selector(BaseModel):
    """Which container a check is about: by name (``redis``), by image (the app has none), or
    by Compose service (``{service: web}``, of any project unless ``project:`` names one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    image: str | None = None
    service: str | None = _optional("a Compose service (its label com.docker.compose.service), e.g. web")
    project: str | None = _optional("with service: the Compose project (default: any), e.g. shop")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_of(self) -> Selector:
        if [self.name, self.image, self.service].count(None) != 2:
            raise ValueError("give exactly one of name, image or service")
        if self.project is not None and self.service is None:
            raise ValueError("project: the Compose project of a service; give it with service")
        return self

    def __str__(self) -> str:
        if self.service is not None:
            return f"service {self.service}" + (f" of project {self.project}" if self.project else "")
        return self.name if self.name is not None else f"image {self.image}"


class ComposeNetwork(BaseModel):
    """A network Compose made for a project (``shop_back`` for ``back``), found by its labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compose_network: str = Field(min_length=1, description="its name in the compose file's networks:, e.g. back")
    project: str | None = _optional("the Compose project (default: any), e.g. shop")

    def __str__(self) -> str:
        return f"Compose network {self.compose_network}" + (f" of project {self.project}" if self.project else "")


# Where a rubric takes a text or a mapping, the error is the one of what was given, not one
# for each: the member is chosen by the value's type. The loader leaves the member's tag out
# of an error's path.
TAG = "one-of-"


def text_or(mapping: type[BaseModel], text: Any = str) -> Any:
    """A field that is ``text`` (a string type), or ``mapping`` given as a YAML mapping."""
    return Annotated[
        Annotated[text, Tag(f"{TAG}text")] | Annotated[mapping, Tag(f"{TAG}mapping")],
        Discriminator(lambda value: f"{TAG}mapping" if isinstance(value, dict | BaseModel) else f"{TAG}text"),
    ]


NetworkRef = text_or(ComposeNetwork)


def _at(value: Any, *path: str) -> Any:
    """The value at ``path`` in nested inspect JSON, or None where a level is missing or is not
    an object: a forged bundle can carry any shape, and a wrong type reads as missing."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _texts(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def name_of(container: Container) -> str:
    return _text(_at(container, "Name")).lstrip("/")


def _id(container: Container) -> str:
    return _text(_at(container, "Id"))


def short_id(container: Container) -> str:
    return _id(container)[:12]


def image_of(container: Container) -> str:
    """The image as the student named it (``docker run redis`` -> ``redis``)."""
    return _text(_at(container, "Config", "Image"))


def command_of(container: Container) -> str:
    """The command line the container was created with, cut to the head checks read."""
    return head(" ".join(_texts(_at(container, "Config", "Cmd"))))


def compose_of(container: Container) -> tuple[str, str]:
    """The Compose project and service a container belongs to (empty: not made by Compose)."""
    labels = _object(_at(container, "Config", "Labels"))
    return _text(labels.get(PROJECT_LABEL)), _text(labels.get(SERVICE_LABEL))


def services(snapshot: Snapshot) -> list[str]:
    """The Compose services of the student's containers, for "a typo?" in a message."""
    return sorted({service for c in students_containers(snapshot) if (service := compose_of(c)[1])})


def network_mode(container: Container) -> str:
    return _text(_at(container, "HostConfig", "NetworkMode"))


def normalize_image(ref: str) -> str:
    """``redis`` and ``docker.io/library/redis:latest`` name the same image."""
    ref = ref.removeprefix("docker.io/").removeprefix("library/")
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in ref else f"{ref}:latest"


def repository(ref: str) -> str:
    """``redis:7``, ``redis@sha256:…`` and ``docker.io/library/redis`` are of the repository ``redis``."""
    ref = normalize_image(ref).split("@", 1)[0]
    path, _, last = ref.rpartition("/")
    return (f"{path}/" if path else "") + last.split(":", 1)[0]


def _tagged(ref: str) -> bool:
    return ":" in ref.rsplit("/", 1)[-1] or "@" in ref


def image_tags(snapshot: Snapshot, container: Container) -> set[str]:
    return _index(snapshot).tags[_id(container)]


def runs_image(snapshot: Snapshot, container: Container, wanted: str) -> bool:
    """The container runs ``wanted``: that very tag when the rubric gives one, else any tag of
    its repository (``image: redis`` is met by ``redis:7`` and ``redis:alpine`` too)."""
    tags = image_tags(snapshot, container)
    if _tagged(wanted):
        return normalize_image(wanted) in tags
    return repository(wanted) in {repository(t) for t in tags}


def is_running(container: Container) -> bool:
    return _at(container, "State", "Running") is True


def state_of(container: Container) -> str:
    return _text(_at(container, "State", "Status")) or "unknown"


def is_probe(container: Container) -> bool:
    return _at(container, "Config", "Labels", "grader.probe") == "1"


def students_containers(snapshot: Snapshot) -> list[Container]:
    return _index(snapshot).students


def select(snapshot: Snapshot, selector: Selector, gone: bool = False) -> list[Container]:
    """Matching containers, running ones first (a stopped twin is weaker evidence). With
    ``gone``, then those a watcher saw that are gone since (``docker run --rm``)."""
    index = _index(snapshot)
    found = _matching(index.present, selector)
    return found + _matching(index.gone, selector) if gone else found


def _matching(index: _Lookup, selector: Selector) -> list[Container]:
    if selector.name is not None:
        return list(index.by_name.get(selector.name, ()))
    if selector.service is not None:
        return list(index.by_service.get((selector.project, selector.service), ()))
    image = selector.image or ""
    if _tagged(image):
        return list(index.by_tag.get(normalize_image(image), ()))
    return list(index.by_repository.get(repository(image), ()))


@dataclass
class _Lookup:
    by_name: dict[str, list[Container]] = field(default_factory=dict)
    by_tag: dict[str, list[Container]] = field(default_factory=dict)
    by_repository: dict[str, list[Container]] = field(default_factory=dict)
    # (project, service) and (None, service) -> the containers of that Compose service
    by_service: dict[tuple[str | None, str], list[Container]] = field(default_factory=dict)

    def add(self, container: Container, tags: set[str]) -> None:
        self.by_name.setdefault(name_of(container), []).append(container)
        project, service = compose_of(container)
        if service:
            for key in {(None, service), (project, service)}:
                self.by_service.setdefault(key, []).append(container)
        for tag in tags:
            self.by_tag.setdefault(tag, []).append(container)
        for name in {repository(tag) for tag in tags}:
            self.by_repository.setdefault(name, []).append(container)


@dataclass
class _Index:
    """The lookups every evaluator makes, built once per snapshot."""

    students: list[Container]
    tags: dict[str, set[str]]  # container id -> the image names it runs
    present: _Lookup = field(default_factory=_Lookup)
    gone: _Lookup = field(default_factory=_Lookup)


_last: list[tuple[Snapshot, _Index]] = []  # the snapshot being evaluated and its index


def _index(snapshot: Snapshot) -> _Index:
    for seen, index in _last:
        if seen is snapshot:
            return index
    images = {_text(i.get("Id")): {normalize_image(t) for t in _texts(i.get("RepoTags"))} for i in snapshot.images}
    students = [c for c in snapshot.containers if not is_probe(c)]
    everyone = [*snapshot.containers, *snapshot.ephemeral]
    tags = {_id(c): {normalize_image(image_of(c)), *images.get(_text(c.get("Image")), ())} for c in everyone}
    index = _Index(students, tags)
    for c in sorted(students, key=lambda c: (not is_running(c), _text(c.get("Created")))):
        index.present.add(c, tags[_id(c)])
    for c in snapshot.ephemeral:
        if not is_probe(c):
            index.gone.add(c, tags[_id(c)])
    _last[:] = [(snapshot, index)]
    return index


def networks_of(container: Container) -> dict[str, dict[str, Any]]:
    networks = _object(_at(container, "NetworkSettings", "Networks"))
    return {name: _object(endpoint) for name, endpoint in networks.items()}


def aliases_on(container: Container, endpoint: dict[str, Any]) -> list[str]:
    """User-given aliases on one network, without the names Docker adds by itself."""
    automatic = {short_id(container), name_of(container), _id(container)}
    hostname = _text(_at(container, "Config", "Hostname"))
    if hostname:
        automatic.add(hostname)
    # A dict keeps the first of each name in order, in time linear in the names.
    names = dict.fromkeys(_texts(endpoint.get("Aliases")) + _texts(endpoint.get("DNSNames")))
    return [alias for alias in names if alias not in automatic]


def answering(snapshot: Snapshot, name: str, network: str) -> list[Container]:
    """The running containers that Docker's embedded DNS gives for ``name`` on ``network``:
    by their name, an alias or another of their DNS names there. The one named so comes
    first, then the others by name."""
    found = [
        c
        for c in students_containers(snapshot)
        if is_running(c) and address_on(c, network)
        for endpoint in [networks_of(c).get(network, {})]
        if name in {name_of(c), *_texts(endpoint.get("Aliases")), *_texts(endpoint.get("DNSNames"))}
    ]
    return sorted(found, key=lambda c: (name_of(c) != name, name_of(c)))


def address_on(container: Container, network: str) -> str | None:
    return _text(_at(container, "NetworkSettings", "Networks", network, "IPAddress")) or None


def address_of(snapshot: Snapshot, selector: Selector, network: str) -> str | None:
    """The address a selected container has on a network now (a stopped one has none)."""
    return next((a for c in select(snapshot, selector) if (a := address_on(c, network))), None)


def addresses_from(snapshot: Snapshot, origin: Selector, target: Selector) -> list[str]:
    """The addresses a running ``origin`` container reaches ``target`` at: its address on each
    network the two share, or, when they share none, every address it has (so that "cannot
    reach" means by any of them). Empty: either is not running (a stopped one has no address)."""
    here = next((c for c in select(snapshot, origin) if is_running(c)), None)
    there = next((c for c in select(snapshot, target) if is_running(c)), None)
    if here is None or there is None:
        return []
    theirs = {name: a for name in sorted(networks_of(there)) if (a := address_on(there, name))}
    shared = [theirs[name] for name in sorted(networks_of(here)) if name in theirs]
    return list(dict.fromkeys(shared or theirs.values()))


def network(snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    return next((n for n in snapshot.networks if n.get("Name") == name), None)


def network_name(snapshot: Snapshot, ref: NetworkRef) -> str | None:
    """The name of the network ``ref`` stands for: itself, or the name of the network Compose
    made for that project's network (the first by name when several projects have one and
    the rubric names none); None when Compose made none."""
    if isinstance(ref, str):
        return ref
    for n in snapshot.networks:
        labels = _object(n.get("Labels"))
        if labels.get(NETWORK_LABEL) == ref.compose_network and ref.project in (None, labels.get(PROJECT_LABEL)):
            return _text(n.get("Name"))
    return None


def network_names(snapshot: Snapshot) -> list[str]:
    return [_text(n.get("Name")) for n in snapshot.networks]


def links_of(container: Container) -> list[tuple[str, str]]:
    """Legacy links as (target name, alias): ``/redis-server:/app/redis`` -> (redis-server, redis)."""
    pairs = []
    for link in _texts(_at(container, "HostConfig", "Links")):
        target, _, inner = link.partition(":")
        pairs.append((target.lstrip("/"), inner.rsplit("/", 1)[-1]))
    return pairs


def bindings(container: Container) -> dict[str, list[tuple[str, str]]]:
    """Container port -> (host address, host port) asked for (HostConfig) or bound
    (NetworkSettings); the address is empty where the student gave none (every address)."""
    found: dict[str, dict[tuple[str, str], None]] = {}  # dicts as ordered sets: linear in the bindings
    for source in (_at(container, "HostConfig", "PortBindings"), _at(container, "NetworkSettings", "Ports")):
        for port, each in _object(source).items():
            for binding in each if isinstance(each, list) else []:
                host_port = _text(_at(binding, "HostPort"))
                if host_port:
                    found.setdefault(port, {})[(_text(_at(binding, "HostIp")), host_port)] = None
    return {port: list(pairs) for port, pairs in found.items()}


def published(container: Container) -> dict[str, list[str]]:
    """Container port -> the host ports it is published on."""
    return {port: list(dict.fromkeys(p for _, p in pairs)) for port, pairs in bindings(container).items()}


def on_address(host_ip: str, wanted: str) -> bool:
    """A binding on ``host_ip`` listens on ``wanted``: the same address, or none given (every
    address) when ``wanted`` is 0.0.0.0 or ``::``."""
    if not host_ip:
        return same_address(wanted, "0.0.0.0") or same_address(wanted, "::")
    return same_address(host_ip, wanted)


def same_address(a: str, b: str) -> bool:
    """Two spellings of one address (``::`` and ``0::0``); a malformed one (a forged bundle's) is none."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def same_subnet(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_network(a, strict=False) == ipaddress.ip_network(b, strict=False)
    except ValueError:
        return False


@dataclass(frozen=True)
class Mount:
    """What is mounted at a path in a container: its type (bind, volume, tmpfs), its source (a
    host path, a volume's name, nothing for a tmpfs) and whether it is read-only."""

    type: str
    source: str
    destination: str
    read_only: bool

    def __str__(self) -> str:
        return " ".join(filter(None, [self.type, self.source, "ro" if self.read_only else "rw"]))


def mounts(container: Container) -> list[Mount]:
    """Its mounts: ``-v`` and ``--mount`` ones, and the ``--tmpfs`` ones, which only HostConfig has."""
    found = []
    for each in _at(container, "Mounts") if isinstance(_at(container, "Mounts"), list) else []:
        kind = _text(_at(each, "Type"))
        source = _text(_at(each, "Name" if kind == "volume" else "Source"))
        found.append(Mount(kind, source, _text(_at(each, "Destination")), _at(each, "RW") is False))
    seen = {m.destination for m in found}
    for destination, options in _object(_at(container, "HostConfig", "Tmpfs")).items():
        if destination not in seen:
            found.append(Mount("tmpfs", "", destination, "ro" in _text(options).split(",")))
    return found


def static_addresses(endpoint: dict[str, Any]) -> list[str]:
    """The addresses a container was given on a network (``--ip``, ``--ip6``), not the ones drawn."""
    return [a for key in ("IPv4Address", "IPv6Address") if (a := _text(_at(endpoint, "IPAMConfig", key)))]


def network_mode_named(snapshot: Snapshot, container: Container) -> str:
    """Its network mode, ``container:ID`` said with the other container's name, and Docker
    20.10's ``default`` (no ``--network`` given) said as ``bridge``, as later engines say it."""
    mode = network_mode(container)
    if mode == "default":
        return "bridge"
    if mode.startswith("container:"):
        other = mode.removeprefix("container:")
        named = next((name_of(c) for c in snapshot.containers if _id(c) == other), other)
        return f"container:{named}"
    return mode


def network_options(network: dict[str, Any]) -> dict[str, Any]:
    """A network's options as ``docker network create`` takes them: internal, ipv6, attachable,
    labels, and each subnet with its gateway (the subnet's first address where IPAM gives none,
    as Docker's default IPAM chooses it and Docker 20.10 leaves it out)."""
    subnets = {}
    for config in _at(network, "IPAM", "Config") if isinstance(_at(network, "IPAM", "Config"), list) else []:
        subnet, gateway = _text(_at(config, "Subnet")), _text(_at(config, "Gateway"))
        if not gateway:
            try:
                gateway = str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
            except (ValueError, StopIteration):
                gateway = ""
        subnets[subnet] = gateway
    labels = _object(_at(network, "Labels"))
    return {
        "internal": _at(network, "Internal") is True,
        "ipv6": _at(network, "EnableIPv6") is True,
        "attachable": _at(network, "Attachable") is True,
        "labels": {k: v for k, v in labels.items() if isinstance(v, str)},
        "subnets": subnets,
    }


def engine_facts(snapshot: Snapshot) -> dict[str, str | None]:
    """The engine that was graded, as ``--format json`` and the exports give it: its version,
    its highest API version, the one this grader spoke with it, and its ID."""
    engine = snapshot.engine
    keys = {"version": "Version", "api_version": "ApiVersion", "negotiated_api_version": "NegotiatedApiVersion"}
    facts = {name: _text(engine.get(key)) or None for name, key in keys.items()}
    return {**facts, "id": _text(engine.get("ID")) or None}


def daemon_ids(snapshot: Snapshot) -> tuple[str | None, list[str]]:
    """The engine's ID (None in older snapshots: it was not kept) and the IDs of the student's
    containers (probe containers live for one run: they tell nothing): what tells two students'
    attempts from one daemon apart (``grader.provenance``)."""
    engine_id = snapshot.engine.get("ID")
    ids = [c["Id"] for c in students_containers(snapshot) if isinstance(c.get("Id"), str)]
    return (engine_id if isinstance(engine_id, str) else None), ids


def engine_version(snapshot: Snapshot) -> tuple[int, ...]:
    raw = _text(snapshot.engine.get("Version")) or "0"
    parts = []
    for piece in raw.split("+")[0].split("-")[0].split("."):
        # isdecimal, not isdigit: int() refuses "²"; and it refuses more than 4300 digits.
        parts.append(int(piece) if piece.isdecimal() and len(piece) < 10 else 0)
    return tuple(parts)
