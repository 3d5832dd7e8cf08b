"""Check kinds over the daemon's objects (inspect JSON): no probe needed."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from .. import facts
from ..facts import ComposeNetwork, Container, NetworkRef, Selector
from ..i18n import Text
from ..snapshot import Snapshot
from ..util import remembered
from .regex import Regex, found
from .registry import Params, Verdict, added, check_kind


def _near(message: Text, name: str, candidates: list[str]) -> Text:
    """``message``, telling of a name in ``candidates`` one keystroke from ``name``."""
    close = _closest(name, tuple(candidates))
    return Text("{message} (found {found}: a typo?)", message=message, found=repr(close)) if close else message


@remembered(answers=1024, characters=4096)
def _closest(name: str, candidates: tuple[str, ...]) -> str | None:
    """The name in ``candidates`` one keystroke from ``name``, if any. Remembered for a short
    question (4 MB at most): the live class asks again about the same names at every check,
    and difflib costs some 0.1 ms a question."""
    # 0.8: backend_network for backend-network (0.93), not frontend-network (0.71).
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    return close[0] if close else None


def judge(found: list[Container], one: Callable[[Container], Verdict], every: bool = False) -> Verdict:
    """The one rule for several containers matching a selector (by image, or a name reused
    after ``docker rm``): a check is met when any of them meets it, or, with ``every`` (a "must
    not"), when all of them do. The verdict is that of the container judged, which it names:
    the first that meets it, else the first that does not (running ones come first)."""
    verdicts = [one(c) for c in found]
    if every:
        return next((v for v in verdicts if not v.passed), verdicts[0])
    return next((v for v in verdicts if v.passed), verdicts[0])


def missing_container(selector: Selector, snapshot: Snapshot) -> Verdict:
    """The shared verdict for a container that is not there at all."""
    message = Text("no container {container}", container=str(selector))
    if selector.service is not None:
        # Not the service itself: it may run in another project than the one named.
        others = [s for s in facts.services(snapshot) if s != selector.service]
        message = _near(message, selector.service, others)
        how = "docker compose up -d"
    elif selector.name is not None:
        names = [facts.name_of(c) for c in facts.students_containers(snapshot)]
        message = _near(message, selector.name, names)
        how = f"docker run --name {selector.name} ..."
    else:
        how = f"docker run ... {selector.image}"
    return Verdict(
        passed=False,
        expected=f"container {selector}",
        actual=None,
        message=message,
        hint=Text("start it: {how}", how=how),
    )


def _address(value: str) -> str:
    return str(ipaddress.ip_address(value))


def _subnet(value: str) -> str:
    return str(ipaddress.ip_network(value))


Address = Annotated[str, AfterValidator(_address)]  # an IPv4 or IPv6 address, e.g. 172.30.0.10
Subnet = Annotated[str, AfterValidator(_subnet)]  # e.g. 172.30.0.0/24 (no host bits set)


def _shown(value: Any) -> str:
    """A fact as a rubric writes it: ``true``, ``tier=back``, ``none``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value) if value else "none"


def _joined(texts: list[Text]) -> Text:
    """Several sentences as one, each still translatable."""
    joined = texts[0]
    for text in texts[1:]:
        joined = Text("{first}; {then}", first=joined, then=text)
    return joined


class NetworkParams(Params):
    name: NetworkRef = Field(description="network name, e.g. backend-network, or {compose_network: back}")
    driver: str = Field("bridge", description="expected driver")
    exists: bool = Field(True, description="false: the network must NOT exist")
    internal: bool | None = added(None, "true: made with --internal (no way out of it); false: not")
    subnet: Subnet | None = added(None, "a subnet it has (--subnet), e.g. 172.30.0.0/24")
    gateway: Address | None = added(None, "a gateway it has (--gateway), e.g. 172.30.0.1")
    ipv6: bool | None = added(None, "true: made with --ipv6; false: not")
    attachable: bool | None = added(None, "true: made with --attachable; false: not")
    labels: dict[str, str] = added({}, "labels it must have (--label KEY=VALUE); others may be there too")

    @model_validator(mode="after")
    def _options_of_an_existing_one(self) -> NetworkParams:
        if not self.exists and self.options():
            raise ValueError(f"{', '.join(self.options())}: options of a network that exists, not with exists: false")
        return self

    def options(self) -> dict[str, Any]:
        """The options asked for, as named in the rubric."""
        asked = {k: getattr(self, k) for k in ("internal", "subnet", "gateway", "ipv6", "attachable")}
        return {k: v for k, v in {**asked, "labels": self.labels}.items() if v not in (None, {})}

    def flags(self) -> list[str]:
        """``docker network create``'s options that make such a network."""
        flags = [] if self.driver == "bridge" else [f"--driver {self.driver}"]
        flags += [f"--{k}" for k in ("internal", "ipv6", "attachable") if getattr(self, k)]
        flags += [f"--{k} {getattr(self, k)}" for k in ("subnet", "gateway") if getattr(self, k)]
        return flags + [f"--label {k}={v}" for k, v in self.labels.items()]


def _network_options(p: NetworkParams, found: dict[str, Any]) -> tuple[dict[str, Any], list[Text]]:
    """The asked options as the network has them, and a sentence for each that differs."""
    have = facts.network_options(found)
    subnets: dict[str, str] = have["subnets"]
    actual: dict[str, Any] = {}
    differ = []
    for option, wanted in p.options().items():
        if option == "subnet":
            actual[option] = [s for s in subnets if s]
            met = any(facts.same_subnet(s, wanted) for s in subnets)
        elif option == "gateway":
            actual[option] = [g for g in subnets.values() if g]
            met = any(facts.same_address(g, wanted) for g in subnets.values())
        elif option == "labels":
            actual[option] = {k: have["labels"][k] for k in wanted if k in have["labels"]}
            met = actual[option] == wanted
        else:
            actual[option] = have[option]
            met = actual[option] == wanted
        if not met:
            differ.append(
                Text(
                    "{option} is {actual}, not {expected}",
                    option=option,
                    actual=_shown(actual[option]),
                    expected=_shown(wanted),
                )
            )
    return actual, differ


@check_kind("network", NetworkParams)
def network_exists(p: NetworkParams, snapshot: Snapshot) -> Verdict:
    """A network exists with the given driver (or, with `exists: false`, does not exist)."""
    name = facts.network_name(snapshot, p.name)
    found = facts.network(snapshot, name) if name else None
    shown = name or str(p.name)
    if not p.exists:
        return Verdict(
            found is None,
            expected="absent",
            actual="present" if found else "absent",
            message=(
                Text("network {name} still exists", name=shown)
                if found
                else Text("network {name} is absent", name=shown)
            ),
            hint=f"docker network rm {shown}" if found else "",
        )
    if found is None:
        return Verdict(
            False,
            expected={"name": shown, "driver": p.driver},
            actual=None,
            message=_no_network(p.name, snapshot),
            hint=(
                Text("create it: docker network create {name}", name=shown)
                if isinstance(p.name, str)
                else Text("declare it under networks: in the compose file, then: docker compose up -d")
            ),
        )
    driver = found.get("Driver")
    expected = {"name": shown, "driver": p.driver, **p.options()}
    actual = {"name": shown, "driver": driver}
    if driver != p.driver or not p.options():
        return Verdict(
            driver == p.driver,
            expected=expected,
            actual=actual,
            message=Text("network {name} uses driver {driver}", name=shown, driver=driver),
            hint="" if driver == p.driver else Text("recreate it with --driver {driver}", driver=p.driver),
        )
    options, differ = _network_options(p, found)
    actual.update(options)
    if not differ:
        said = ", ".join(f"{k} {_shown(v)}" for k, v in p.options().items())
        return Verdict(True, expected, actual, message=Text("network {name}: {options}", name=shown, options=said))
    command = " ".join(["docker network create", *p.flags(), shown])
    return Verdict(
        False,
        expected,
        actual,
        message=Text("network {name}: {differences}", name=shown, differences=_joined(differ)),
        hint=Text("recreate it: docker network rm {name}; {command}", name=shown, command=command),
    )


def _no_network(ref: NetworkRef, snapshot: Snapshot) -> Text:
    """There is no such network: a near name, or the network Compose made for it, may be there."""
    if not isinstance(ref, str) and ref.project:
        return Text("no Compose network {name} in project {project}", name=ref.compose_network, project=ref.project)
    if not isinstance(ref, str):
        return Text("no Compose network {name}", name=ref.compose_network)
    made = facts.network_name(snapshot, ComposeNetwork(compose_network=ref))
    if made:
        return Text("no network {name} ({found} is Compose's network {name})", name=ref, found=made)
    return _near(Text("no network {name}", name=ref), ref, facts.network_names(snapshot))


class ContainerParams(Params):
    container: Selector = Field(description="name, or {image: ...}")
    running: bool = Field(True, description="must be running (false: only has to exist)")
    image: str | None = Field(None, description="expected image, e.g. redis")
    network_mode: str | None = added(
        None, "its network mode (--network): bridge, host, none, container:NAME, or a network's name"
    )


@check_kind("container", ContainerParams)
def container_state(p: ContainerParams, snapshot: Snapshot) -> Verdict:
    """A container exists, runs, and was created from the expected image. A stopped
    container earns half the points of a running one."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    return judge(found, lambda c: _container_state(p, snapshot, c))


def _container_state(p: ContainerParams, snapshot: Snapshot, c: Container) -> Verdict:
    expected: dict[str, Any] = {"running": p.running, "image": p.image}
    actual = {
        "name": facts.name_of(c),
        "state": facts.state_of(c),
        "image": facts.image_of(c),
    }
    if p.network_mode is not None:
        expected["network_mode"] = p.network_mode
        actual["network_mode"] = facts.network_mode_named(snapshot, c)
    if p.image and not facts.runs_image(snapshot, c, p.image):
        return Verdict(
            False,
            expected,
            actual,
            message=Text(
                "{name} runs image {image}, not {wanted}", name=actual["name"], image=actual["image"], wanted=p.image
            ),
            hint=Text("remove it and start it from the right image: docker run ... {image}", image=p.image),
        )
    if p.network_mode is not None and actual["network_mode"] != p.network_mode:
        return Verdict(
            False,
            expected,
            actual,
            message=Text(
                "{name} runs with network {mode}, not {wanted}",
                name=actual["name"],
                mode=actual["network_mode"] or "none",
                wanted=p.network_mode,
            ),
            hint=Text("remove it and run it again with --network {mode}", mode=p.network_mode),
        )
    if p.running and not facts.is_running(c):
        return Verdict(
            False,
            expected,
            actual,
            fraction=0.5,
            message=Text("{name} exists but is {state}", name=actual["name"], state=actual["state"]),
            hint=Text("start it again: docker start {name}", name=facts.name_of(c)),
        )
    if p.network_mode is not None:
        message = Text(
            "{name} is {state}, with network {mode}", name=actual["name"], state=actual["state"], mode=p.network_mode
        )
    else:
        message = Text("{name} is {state}", name=actual["name"], state=actual["state"])
    return Verdict(True, expected, actual, message=message)


class PortParams(Params):
    container: Selector
    port: int = Field(description="container port, e.g. 3000")
    host_port: int | None = Field(None, description="host port it must be published on (omitted: any)")
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    host_ip: Address | None = added(
        None, "host address it must be bound to: 127.0.0.1 (-p 127.0.0.1:81:80), 0.0.0.0 or :: (every address)"
    )
    published: bool = added(True, "false: must NOT be published (on that host port and address, when given)")

    @model_validator(mode="after")
    def _where(self) -> PortParams:
        if self.published and self.host_port is None:
            raise ValueError("host_port: the host port it must be published on (only published: false may omit it)")
        return self

    def binding(self) -> str:
        """The host side asked for, as ``-p`` writes it: ``81``, ``127.0.0.1:81``, ``[::]:81``."""
        if self.host_port is None:
            return self.host_ip or "any port"
        return _bound(self.host_ip, str(self.host_port)) if self.host_ip else str(self.host_port)


@check_kind("published_port", PortParams)
def published_port(p: PortParams, snapshot: Snapshot) -> Verdict:
    """A container publishes its port on the expected host port (`-p HOST:CONTAINER`), on the
    expected host address when `host_ip` is given (`-p 127.0.0.1:81:80`); with `published:
    false`, it does not (on that host port and address, when given)."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    return judge(found, lambda c: _published_port(p, c), every=not p.published)


def _published_port(p: PortParams, c: Container) -> Verdict:
    key = f"{p.port}/{p.protocol}"
    name = facts.name_of(c)
    pairs = facts.bindings(c).get(key, [])
    hits = [
        (ip, hp)
        for ip, hp in pairs
        if (p.host_port is None or hp == str(p.host_port)) and (p.host_ip is None or facts.on_address(ip, p.host_ip))
    ]
    matching = list(dict.fromkeys(_bound(ip or p.host_ip or "", hp) for ip, hp in hits))
    if p.host_ip is None and p.published:  # the kind's first form: host ports, as it always said them
        expected: Any = {key: str(p.host_port)}
        actual: Any = facts.published(c)
        shown = actual.get(key, [])
    else:
        shown = list(dict.fromkeys(_bound(ip, hp) for ip, hp in pairs))
        expected = {key: p.binding() if p.published else f"not {p.binding()}"}
        actual = {key: shown}
    if not p.published:
        if not hits:
            message = (
                Text("{name}: {port} is not published on {binding}", name=name, port=key, binding=p.binding())
                if p.host_port is not None or p.host_ip is not None
                else Text("{name}: {port} is not published", name=name, port=key)
            )
            return Verdict(True, expected, actual, message=message)
        ip, hp = hits[0]  # as the student wrote it: -p 6379:6379, -p 0.0.0.0:81:80
        return Verdict(
            False,
            expected,
            actual,
            message=Text(
                "{name}: {port} is published on {host_ports}", name=name, port=key, host_ports=", ".join(matching)
            ),
            hint=Text("remove it and run it again without -p {binding}", binding=f"{ip}:{hp}:{p.port}".lstrip(":")),
        )
    if hits:
        message = Text("{name}: {port} published on {host_port}", name=name, port=key, host_port=p.binding())
        return Verdict(True, expected, actual, message=message)
    if shown:
        message = Text("{name}: {port} is published on {host_ports}", name=name, port=key, host_ports=", ".join(shown))
    else:
        message = Text("{name}: {port} is not published", name=name, port=key)
    port = str(p.port) if p.protocol == "tcp" else key
    return Verdict(
        False,
        expected,
        actual,
        message=message,
        hint=Text("run it with -p {host_port}:{port}", host_port=p.binding(), port=port),
    )


def _bound(host_ip: str, host_port: str) -> str:
    """A binding as ``docker port`` says it; one with no address given is on every address."""
    host_ip = host_ip or "0.0.0.0"
    return f"[{host_ip}]:{host_port}" if ":" in host_ip else f"{host_ip}:{host_port}"


class AttachedParams(Params):
    container: Selector
    network: NetworkRef = Field(description="network name, or {compose_network: back}")
    aliases: list[str] = Field(default_factory=list, description="aliases it must have there")
    attached: bool = Field(True, description="false: must NOT be attached")
    ip: Address | None = added(None, "the static address it was given there (--ip, --ip6), e.g. 172.30.0.10")

    @model_validator(mode="after")
    def _ip_when_attached(self) -> AttachedParams:
        if self.ip is not None and not self.attached:
            raise ValueError("ip: the address of a container that is attached, not with attached: false")
        return self

    def flags(self) -> str:
        """``docker network connect``'s options that give it its aliases and address."""
        ip = [] if self.ip is None else [f"--ip6 {self.ip}" if ":" in self.ip else f"--ip {self.ip}"]
        return "".join(f"{flag} " for flag in [*(f"--alias {a}" for a in self.aliases), *ip])


@check_kind("attached", AttachedParams)
def attached(p: AttachedParams, snapshot: Snapshot) -> Verdict:
    """A container is attached to a network with the given aliases and static address (or,
    with `attached: false`, is not attached to it). Attached without them earns half."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    network = facts.network_name(snapshot, p.network) or str(p.network)
    return judge(found, lambda c: _attached(p, network, c), every=not p.attached)


def _compose_hint(c: Container) -> Text | None:
    """For a container Compose made: its networks are the compose file's to change."""
    service = facts.compose_of(c)[1]
    return (
        Text("change {service}'s networks: in the compose file, then: docker compose up -d", service=service)
        if service
        else None
    )


def _attached(p: AttachedParams, network: str, c: Container) -> Verdict:
    name = facts.name_of(c)
    nets = facts.networks_of(c)
    layout = {net: facts.aliases_on(c, ep) for net, ep in nets.items()}
    if not p.attached:
        on = network in nets
        return Verdict(
            not on,
            expected={"not on": network},
            actual=layout,
            message=(
                Text("{name} is still on {network}", name=name, network=network)
                if on
                else Text("{name} is not on {network}", name=name, network=network)
            ),
            hint=(_compose_hint(c) or f"docker network disconnect {network} {name}") if on else "",
        )
    expected = {network: p.aliases}
    named = {"name": name, "network": network}
    if network not in nets:
        if nets:
            message = Text("{name} is on {networks}, not on {network}", networks=", ".join(sorted(nets)), **named)
        else:
            message = Text("{name} is on no network, not on {network}", **named)
        return Verdict(
            False,
            expected,
            layout,
            message=_near(message, network, list(nets)),
            hint=_compose_hint(c) or f"docker network connect {p.flags()}{network} {name}",
        )
    missing = [a for a in p.aliases if a not in layout[network]]
    reconnect = _compose_hint(c) or (
        f"docker network disconnect {network} {name}; docker network connect {p.flags()}{network} {name}"
    )
    if not missing and p.ip is not None:
        given = facts.static_addresses(nets[network])
        expected = {network: {"aliases": p.aliases, "ip": p.ip}}
        actual = {net: {"aliases": al, "ip": facts.static_addresses(nets[net])} for net, al in layout.items()}
        if not any(facts.same_address(a, p.ip) for a in given):
            return Verdict(
                False,
                expected,
                actual,
                fraction=0.5,
                message=Text(
                    "{name} is on {network} without the static address {ip} (given: {given})",
                    ip=p.ip,
                    given=", ".join(given) or "none",
                    **named,
                ),
                hint=reconnect,
            )
        return Verdict(True, expected, actual, message=Text("{name} is on {network} at {ip}", ip=p.ip, **named))
    if not missing:
        return Verdict(
            True,
            expected,
            layout,
            message=Text("{name} is on {network} with aliases {aliases}", aliases=layout[network], **named),
        )
    elsewhere = [net for net, al in layout.items() if set(missing) & set(al)]
    message = Text(
        "{name} is on {network} with aliases {aliases}; expected alias {missing}",
        aliases=layout[network],
        missing=", ".join(missing),
        **named,
    )
    if elsewhere:
        message = Text("{message} (it is on {networks} instead)", message=message, networks=", ".join(elsewhere))
    return Verdict(
        False,
        expected,
        layout,
        fraction=0.5,
        message=message,
        hint=reconnect,
    )


class MountParams(Params):
    container: Selector
    destination: str = Field(pattern=r"^/", description="path in the container, e.g. /usr/share/nginx/html")
    source: str | None = Field(None, description="host path (bind) or volume name (volume), e.g. /root/app-2")
    type: Literal["bind", "volume", "tmpfs"] | None = Field(None, description="bind, volume or tmpfs")
    read_only: bool | None = Field(None, description="true: mounted read-only (:ro); false: writable")

    @model_validator(mode="after")
    def _tmpfs_has_no_source(self) -> MountParams:
        if self.type == "tmpfs" and self.source is not None:
            raise ValueError("source: a tmpfs has none (it lives in memory)")
        return self

    def flag(self) -> str:
        """The ``docker run`` option that makes such a mount."""
        if self.type == "tmpfs":
            return f"--tmpfs {self.destination}" + (":ro" if self.read_only else "")
        source = self.source or ("VOLUME" if self.type == "volume" else "/HOST/PATH")
        return f"-v {source}:{self.destination}" + (":ro" if self.read_only else "")

    def wanted(self) -> dict[str, Any]:
        asked = {"type": self.type, "source": self.source, "read_only": self.read_only}
        return {k: v for k, v in asked.items() if v is not None}

    def described(self) -> str:
        """As ``facts.Mount`` says a mount: ``bind /root/app-2 ro``, of what is asked."""
        access = None if self.read_only is None else "ro" if self.read_only else "rw"
        return " ".join(filter(None, [self.type, self.source, access]))


@check_kind("mount", MountParams, added=True)
def mount(p: MountParams, snapshot: Snapshot) -> Verdict:
    """Something is mounted on a path in a container: a host folder (`-v /root/app-2:/usr/share/nginx/html`),
    a named volume (`-v data:/data`) or a tmpfs (`--tmpfs /run`), read-only (`:ro`) or not, as
    given. Mounted there but not as asked earns half."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    return judge(found, lambda c: _mount(p, c))


def _mount(p: MountParams, c: Container) -> Verdict:
    name = facts.name_of(c)
    mounts = facts.mounts(c)
    actual = {m.destination: str(m) for m in mounts}
    expected = {p.destination: p.wanted()}
    there = next((m for m in mounts if _path(m.destination) == _path(p.destination)), None)
    if there is None:
        return Verdict(
            False,
            expected,
            actual,
            message=Text("{name} has nothing mounted on {destination}", name=name, destination=p.destination),
            hint=Text("remove it and run it again with {flag}", flag=p.flag()),
        )
    said = {"name": name, "destination": p.destination, "mount": str(there)}
    if (
        p.type in (None, there.type)
        and p.read_only in (None, there.read_only)
        and (p.source is None or _path(p.source) == _path(there.source))
    ):
        return Verdict(True, expected, actual, message=Text("{name}: {destination} is {mount}", **said))
    return Verdict(
        False,
        expected,
        actual,
        fraction=0.5,
        message=Text("{name}: {destination} is {mount}, expected {wanted}", wanted=p.described(), **said),
        hint=Text("remove it and run it again with {flag}", flag=p.flag()),
    )


def _path(path: str) -> str:
    """``/data/`` is ``/data``."""
    return path.rstrip("/") or "/"


class LinkParams(Params):
    container: Selector = Field(description="the container that links (often by image)")
    target: str = Field(description="linked container's name, e.g. redis-server")
    alias: str = Field(description="link alias, e.g. redis")
    running: bool = Field(False, description="the linking container must be running")


@check_kind("link", LinkParams)
def link(p: LinkParams, snapshot: Snapshot) -> Verdict:
    """A container was created with the legacy link `--link TARGET:ALIAS` (stopped ones count
    unless `running: true`)."""
    found = [c for c in facts.select(snapshot, p.container) if facts.is_running(c) or not p.running]
    if not found:
        return missing_container(p.container, snapshot)
    wanted = (p.target, p.alias)
    linked = [c for c in found if wanted in facts.links_of(c)]
    if linked:
        return Verdict(
            True,
            f"{p.target}:{p.alias}",
            f"{p.target}:{p.alias}",
            message=Text(
                "{name} is linked to {target} as {alias}", name=facts.name_of(linked[0]), target=p.target, alias=p.alias
            ),
        )
    seen = sorted({f"{t}:{a}" for c in found for t, a in facts.links_of(c)})
    return Verdict(
        False,
        f"{p.target}:{p.alias}",
        seen or None,
        message=(
            Text(
                "{container}: links {links}, expected {link}",
                container=str(p.container),
                links=seen,
                link=f"{p.target}:{p.alias}",
            )
            if seen
            else Text(
                "{container}: links none, expected {link}", container=str(p.container), link=f"{p.target}:{p.alias}"
            )
        ),
        hint=Text("run it with --link {target}:{alias}", target=p.target, alias=p.alias),
    )


class RanParams(Params):
    image: str = Field(description="image the helper container ran, e.g. alpine")
    command: Regex = Field(description="regular expression over its command line, e.g. '^env$'")
    network: str | None = Field(None, description="network it ran on")
    link: str | None = Field(None, description="legacy link it had, TARGET:ALIAS")


@check_kind("ran", RanParams)
def ran(p: RanParams, snapshot: Snapshot) -> Verdict:
    """Evidence that the student ran a step's helper container (exited ones count):
    image, command, and optionally its network or link. Gone with `--rm`, unless `check
    --watch` saw it run; so rubrics make this a checkpoint worth few points."""
    candidates = facts.select(snapshot, Selector(image=p.image), gone=True)
    seen = []
    for c in candidates:
        if facts.state_of(c) == "created":  # `docker run` on a missing network: it never ran
            continue
        line = facts.command_of(c)
        seen.append(line)
        if not found(p.command, line):
            continue
        if p.network and p.network not in facts.networks_of(c) and facts.network_mode(c) != p.network:
            continue
        if p.link and tuple(p.link.split(":", 1)) not in facts.links_of(c):
            continue
        return Verdict(
            True,
            p.model_dump(exclude_none=True),
            {"container": facts.name_of(c), "command": line},
            message=Text("{name} ran {command}", name=facts.name_of(c), command=repr(line)),
        )
    where = "".join([f" --net={p.network}" if p.network else "", f" --link {p.link}" if p.link else ""])
    return Verdict(
        False,
        p.model_dump(exclude_none=True),
        {"commands seen": seen} if seen else None,
        message=Text(
            "no {image} container that ran /{command}/{options}", image=p.image, command=p.command, options=where
        ),
        hint=f"docker run{where} {p.image} ...",
    )
