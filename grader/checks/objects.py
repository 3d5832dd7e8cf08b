"""Check kinds over the daemon's objects (inspect JSON): no probe needed."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from pydantic import Field

from .. import facts
from ..facts import Container, Selector
from ..i18n import Text
from ..snapshot import Snapshot
from .regex import Regex, regex
from .registry import Params, Verdict, check_kind


def _near(message: Text, name: str, candidates: list[str]) -> Text:
    """``message``, telling of a name in ``candidates`` one keystroke from ``name``."""
    # 0.8: backend_network for backend-network (0.93), not frontend-network (0.71).
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
    return Text("{message} (found {found}: a typo?)", message=message, found=repr(close[0])) if close else message


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
    names = [facts.name_of(c) for c in facts.students_containers(snapshot)]
    message = Text("no container {container}", container=str(selector))
    how = f"docker run --name {selector.name} ..." if selector.name else f"docker run ... {selector.image}"
    return Verdict(
        passed=False,
        expected=f"container {selector}",
        actual=None,
        message=_near(message, selector.name, names) if selector.name else message,
        hint=Text("start it: {how}", how=how),
    )


class NetworkParams(Params):
    name: str = Field(description="network name, e.g. backend-network")
    driver: str = Field("bridge", description="expected driver")
    exists: bool = Field(True, description="false: the network must NOT exist")


@check_kind("network", NetworkParams)
def network_exists(p: NetworkParams, snapshot: Snapshot) -> Verdict:
    """A network exists with the given driver (or, with `exists: false`, does not exist)."""
    found = facts.network(snapshot, p.name)
    names = facts.network_names(snapshot)
    if not p.exists:
        return Verdict(
            found is None,
            expected="absent",
            actual="present" if found else "absent",
            message=(
                Text("network {name} still exists", name=p.name)
                if found
                else Text("network {name} is absent", name=p.name)
            ),
            hint=f"docker network rm {p.name}" if found else "",
        )
    if found is None:
        return Verdict(
            False,
            expected={"name": p.name, "driver": p.driver},
            actual=None,
            message=_near(Text("no network {name}", name=p.name), p.name, names),
            hint=Text("create it: docker network create {name}", name=p.name),
        )
    driver = found.get("Driver")
    return Verdict(
        driver == p.driver,
        expected={"name": p.name, "driver": p.driver},
        actual={"name": p.name, "driver": driver},
        message=Text("network {name} uses driver {driver}", name=p.name, driver=driver),
        hint="" if driver == p.driver else Text("recreate it with --driver {driver}", driver=p.driver),
    )


class ContainerParams(Params):
    container: Selector = Field(description="name, or {image: ...}")
    running: bool = Field(True, description="must be running (false: only has to exist)")
    image: str | None = Field(None, description="expected image, e.g. redis")


@check_kind("container", ContainerParams)
def container_state(p: ContainerParams, snapshot: Snapshot) -> Verdict:
    """A container exists, runs, and was created from the expected image. A stopped
    container earns half the points of a running one."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    return judge(found, lambda c: _container_state(p, snapshot, c))


def _container_state(p: ContainerParams, snapshot: Snapshot, c: Container) -> Verdict:
    expected = {"running": p.running, "image": p.image}
    actual = {
        "name": facts.name_of(c),
        "state": facts.state_of(c),
        "image": facts.image_of(c),
    }
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
    if p.running and not facts.is_running(c):
        return Verdict(
            False,
            expected,
            actual,
            fraction=0.5,
            message=Text("{name} exists but is {state}", name=actual["name"], state=actual["state"]),
            hint=Text("start it again: docker start {name}", name=facts.name_of(c)),
        )
    return Verdict(
        True, expected, actual, message=Text("{name} is {state}", name=actual["name"], state=actual["state"])
    )


class PortParams(Params):
    container: Selector
    port: int = Field(description="container port, e.g. 3000")
    host_port: int = Field(description="host port it must be published on")
    protocol: str = "tcp"


@check_kind("published_port", PortParams)
def published_port(p: PortParams, snapshot: Snapshot) -> Verdict:
    """A container publishes its port on the expected host port (`-p HOST:CONTAINER`)."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    return judge(found, lambda c: _published_port(p, c))


def _published_port(p: PortParams, c: Container) -> Verdict:
    ports = facts.published(c)
    key = f"{p.port}/{p.protocol}"
    if str(p.host_port) in ports.get(key, []):
        message = Text(
            "{name}: {port} published on {host_port}", name=facts.name_of(c), port=key, host_port=p.host_port
        )
        return Verdict(True, {key: str(p.host_port)}, ports, message=message)
    if key in ports:
        message = Text(
            "{name}: {port} is published on {host_ports}",
            name=facts.name_of(c),
            port=key,
            host_ports=", ".join(ports[key]),
        )
    else:
        message = Text("{name}: {port} is not published", name=facts.name_of(c), port=key)
    return Verdict(
        False,
        {key: str(p.host_port)},
        ports,
        message=message,
        hint=Text("run it with -p {host_port}:{port}", host_port=p.host_port, port=p.port),
    )


class AttachedParams(Params):
    container: Selector
    network: str
    aliases: list[str] = Field(default_factory=list, description="aliases it must have there")
    attached: bool = Field(True, description="false: must NOT be attached")


@check_kind("attached", AttachedParams)
def attached(p: AttachedParams, snapshot: Snapshot) -> Verdict:
    """A container is attached to a network with the given aliases (or, with
    `attached: false`, is not attached to it). Attached without the aliases earns half."""
    found = facts.select(snapshot, p.container)
    if not found:
        return missing_container(p.container, snapshot)
    return judge(found, lambda c: _attached(p, c), every=not p.attached)


def _attached(p: AttachedParams, c: Container) -> Verdict:
    name = facts.name_of(c)
    nets = facts.networks_of(c)
    layout = {net: facts.aliases_on(c, ep) for net, ep in nets.items()}
    if not p.attached:
        on = p.network in nets
        return Verdict(
            not on,
            expected={"not on": p.network},
            actual=layout,
            message=(
                Text("{name} is still on {network}", name=name, network=p.network)
                if on
                else Text("{name} is not on {network}", name=name, network=p.network)
            ),
            hint=f"docker network disconnect {p.network} {name}" if on else "",
        )
    expected = {p.network: p.aliases}
    named = {"name": name, "network": p.network}
    if p.network not in nets:
        if nets:
            message = Text("{name} is on {networks}, not on {network}", networks=", ".join(sorted(nets)), **named)
        else:
            message = Text("{name} is on no network, not on {network}", **named)
        return Verdict(
            False,
            expected,
            layout,
            message=_near(message, p.network, list(nets)),
            hint=f"docker network connect {_alias_flags(p.aliases)}{p.network} {name}",
        )
    missing = [a for a in p.aliases if a not in layout[p.network]]
    if not missing:
        return Verdict(
            True,
            expected,
            layout,
            message=Text("{name} is on {network} with aliases {aliases}", aliases=layout[p.network], **named),
        )
    elsewhere = [net for net, al in layout.items() if set(missing) & set(al)]
    message = Text(
        "{name} is on {network} with aliases {aliases}; expected alias {missing}",
        aliases=layout[p.network],
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
        hint=f"docker network disconnect {p.network} {name}; "
        f"docker network connect {_alias_flags(p.aliases)}{p.network} {name}",
    )


def _alias_flags(aliases: list[str]) -> str:
    return "".join(f"--alias {a} " for a in aliases)


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
    pattern = regex(p.command)
    candidates = facts.select(snapshot, Selector(image=p.image), gone=True)
    seen = []
    for c in candidates:
        if facts.state_of(c) == "created":  # `docker run` on a missing network: it never ran
            continue
        line = facts.command_of(c)
        seen.append(line)
        if not pattern.search(line):
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
