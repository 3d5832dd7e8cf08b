"""Check kinds over live probes run inside the daemon's networks."""

from __future__ import annotations

import functools

from pydantic import Field, model_validator

from .. import facts
from ..facts import Selector
from ..i18n import Text
from ..probe.spec import REACHING, Origin, ProbeSpec
from ..snapshot import ProbeResult, Snapshot
from ..text import head
from .regex import LineRegex, Regex, regex
from .registry import Evaluator, Params, Verdict, added, check_kind

EMBEDDED_DNS = "127.0.0.11"
# Docker 28.4 deprecated legacy links' environment variables; later engines drop them.
LINK_ENV_DEPRECATED = (28, 4)


class Probed(Params):
    """Parameters of a kind that asks the daemon one probe, built by ``probe()``."""

    def probe(self) -> ProbeSpec:
        raise NotImplementedError

    def probes(self) -> list[ProbeSpec]:
        return [self.probe()]


class FromNetwork(Probed):
    network: str = Field("bridge", description="network the probe container joins")
    links: list[str] = Field(default_factory=list, description="legacy links it gets, TARGET:ALIAS")

    def origin(self) -> Origin:
        return Origin(network=self.network, links=tuple(self.links))

    def where(self) -> str:
        return self.network + "".join(f" --link {link}" for link in self.links)


class FromContainer(FromNetwork):
    """A probe that may run inside a student's running container (``from``) instead of a probe
    container on a network."""

    from_: Selector | None = added(
        None,
        "run the probe inside this running container (a read-only exec) instead of a probe "
        "container on NETWORK; it needs the tool (ping, nc, wget, getent or nslookup)",
        alias="from",
    )

    @model_validator(mode="after")
    def _one_origin(self) -> FromContainer:
        if self.from_ is not None and {"network", "links"} & self.model_fields_set:
            raise ValueError("give from (a container to probe from) or network and links, not both")
        return self

    def origin(self) -> Origin:
        return Origin(container=self.from_) if self.from_ is not None else super().origin()

    def where(self) -> str:
        return str(self.from_) if self.from_ is not None else super().where()


# Exit codes of a probe's command that are no evidence either way: its section was lost (125),
# or its tool is not in the container (126 not executable, 127 not found).
DID_NOT_RUN = frozenset({125, 126, 127})


def ran(result: ProbeResult, p: FromNetwork) -> Verdict | None:
    """None when the probe's command ran, whatever it answered; otherwise the ``error`` verdict
    (no evidence, no verdict: a missing tool is no proof that a name does not resolve)."""
    code = result.data.get("exit_code")
    if code not in DID_NOT_RUN:
        return None
    return Verdict(
        False,
        error=True,
        actual=result.output.strip()[-200:] or None,
        evidence=[result.key],
        message=Text("the probe did not run in {where} (exit {code}): no evidence", where=p.where(), code=code),
    )


def probe_verdict(snapshot: Snapshot, spec: ProbeSpec) -> ProbeResult | Verdict:
    """The probe's result, or the verdict when it could not run at all."""
    result = spec.result_in(snapshot)
    if result is None:
        return Verdict(
            False,
            error=True,
            message=Text("probe {key} was not run (snapshot taken for another rubric?)", key=spec.key),
        )
    # The runner's sentence as a template when it is one of ours (``data.said``), so it can be translated.
    said = Text.load(result.data["said"]) if "said" in result.data else result.error
    if result.error and result.data.get("state"):
        return Verdict(False, actual=None, message=said, evidence=[spec.key])
    if result.error:
        return Verdict(False, error=True, message=Text("could not probe: {error}", error=said), evidence=[spec.key])
    return result


SHOWN_NAMES = 5  # containers named in a shared name's sentence; the count says how many more


def noting_shared_names(evaluate: Evaluator) -> Evaluator:
    """An evaluator whose probe looks up or reaches a name that several containers answer to on
    its network says so. A probe that reaches the name reached the container named so (the
    rubric's: see ``ProbeSpec.address_in``); when none of them is, whichever the DNS gives first
    is no evidence of anything, and the check fails on that fact."""

    @functools.wraps(evaluate)
    def noted(p: Probed, snapshot: Snapshot) -> Verdict:
        spec = p.probe()
        shared = spec.shared_by(snapshot)
        if not shared:
            return evaluate(p, snapshot)
        names = [facts.name_of(c) for c in shared]  # the one named so first, if any
        network = spec.origin.network or "bridge"
        said = Text(
            "{name} on {network} answers for {count} containers: {names}",
            name=spec.host,
            network=network,
            count=len(names),
            names=", ".join(names[:SHOWN_NAMES]) + (", …" if len(names) > SHOWN_NAMES else ""),
        )
        if spec.action in REACHING and names[0] != spec.host:
            return Verdict(
                False,
                expected=f"one container answers to {spec.host}",
                actual=names,
                message=said,
                hint=Text("give {name} to one container on {network} only", name=spec.host, network=network),
            )
        verdict = evaluate(p, snapshot)
        verdict.message = Text("{message} ({shared})", message=verdict.message, shared=said)
        return verdict

    return noted


class LinkEnvParams(FromNetwork):
    prefix: str = Field(description="link alias in upper case, e.g. REDIS")
    present: bool = Field(True, description="false: Docker must set none (user networks)")

    def probe(self) -> ProbeSpec:
        return ProbeSpec(action="env", origin=self.origin())


@check_kind("link_env", LinkEnvParams)
def link_env(p: LinkEnvParams, snapshot: Snapshot) -> Verdict:
    """Docker sets a link's environment variables (`REDIS_PORT`, `REDIS_NAME`, ...) in a
    container started on NETWORK with LINKS, or sets none on a user network. On Docker 28.4
    and later, missing variables are "not applicable on this engine", not a failure."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    found = sorted(k for k in result.data.get("vars", {}) if k.startswith(f"{p.prefix}_"))
    evidence = [result.key]
    if not p.present:
        return Verdict(
            not found,
            expected=[],
            actual=found,
            evidence=evidence,
            message=(
                Text("{prefix}_* variables on {where}: {found}", prefix=p.prefix, where=p.where(), found=found)
                if found
                else Text("{prefix}_* variables on {where}: none", prefix=p.prefix, where=p.where())
            ),
        )
    if found:
        return Verdict(
            True,
            expected=f"{p.prefix}_*",
            actual=found,
            evidence=evidence,
            message=Text("{count} {prefix}_* variables set", count=len(found), prefix=p.prefix),
        )
    if facts.engine_version(snapshot) >= LINK_ENV_DEPRECATED:
        return Verdict(
            True,
            expected=f"{p.prefix}_*",
            actual=[],
            evidence=evidence,
            message=Text(
                "not applicable on this engine: Docker {version} no longer sets link variables",
                version=snapshot.engine.get("Version"),
            ),
        )
    return Verdict(
        False,
        expected=f"{p.prefix}_*",
        actual=[],
        evidence=evidence,
        message=Text("no {prefix}_* variables in a container on {where}", prefix=p.prefix, where=p.where()),
        hint=Text("link variables come only with --link on the default bridge"),
    )


class HostsParams(FromNetwork):
    name: str = Field(description="name in /etc/hosts, e.g. redis")
    target: str | None = Field(None, description="container whose address it must map to")
    present: bool = True

    def probe(self) -> ProbeSpec:
        return ProbeSpec(action="hosts", origin=self.origin())


@check_kind("hosts_entry", HostsParams)
def hosts_entry(p: HostsParams, snapshot: Snapshot) -> Verdict:
    """`/etc/hosts` of a container on NETWORK with LINKS has an entry NAME -> TARGET's address
    (`<ip> redis <id> redis-server` for a link), or has none (`present: false`)."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    entries = [e for e in result.data.get("entries", []) if p.name in e[1:]]
    evidence = [result.key]
    if not p.present:
        return Verdict(
            not entries,
            expected=[],
            actual=entries,
            evidence=evidence,
            message=(
                Text("/etc/hosts entries for {name}: {entries}", name=p.name, entries=entries)
                if entries
                else Text("/etc/hosts entries for {name}: none", name=p.name)
            ),
        )
    if not entries:
        return Verdict(
            False,
            expected=f"<ip> {p.name}",
            actual=result.data.get("entries"),
            evidence=evidence,
            message=Text("no /etc/hosts entry for {name}", name=p.name),
            hint=Text("link the container: --link {target}:{name}", target=p.target or p.name, name=p.name),
        )
    if p.target:
        want = facts.address_of(snapshot, Selector(name=p.target), p.network)
        if want not in {e[0] for e in entries}:
            return Verdict(
                False,
                expected=f"{want} {p.name}",
                actual=entries,
                evidence=evidence,
                message=Text(
                    "{name} maps to {address}, but {target} is at {wanted}",
                    name=p.name,
                    address=entries[0][0],
                    target=p.target,
                    wanted=want,
                ),
            )
    return Verdict(
        True,
        expected=f"<ip> {p.name}",
        actual=entries,
        evidence=evidence,
        message=" ".join(entries[0]),
    )


class ResolverParams(FromNetwork):
    nameserver: str = Field(EMBEDDED_DNS, description="expected nameserver")

    def probe(self) -> ProbeSpec:
        return ProbeSpec(action="resolv", origin=self.origin())


@check_kind("resolver", ResolverParams)
def resolver(p: ResolverParams, snapshot: Snapshot) -> Verdict:
    """A container on NETWORK uses the embedded DNS server (`nameserver 127.0.0.11`)."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    servers = result.data.get("nameservers", [])
    ok = servers[:1] == [p.nameserver]
    return Verdict(
        ok,
        expected=p.nameserver,
        actual=servers,
        evidence=[result.key],
        message=(
            Text("/etc/resolv.conf on {network}: nameserver {servers}", network=p.network, servers=", ".join(servers))
            if servers
            else Text("/etc/resolv.conf on {network}: nameserver none", network=p.network)
        ),
        hint="" if ok else Text("the embedded DNS serves user-defined networks only: docker network create ..."),
    )


class ResolvesParams(FromContainer):
    name: str = Field(description="name to look up, e.g. redis or db")
    to: Selector | None = Field(None, description="container whose address on NETWORK it must give")
    to_all: list[Selector] | None = added(
        None, "containers sharing NAME (an alias): it must give exactly their addresses, one each (round robin)"
    )
    resolves: bool = Field(True, description="false: the name must NOT resolve there")

    @model_validator(mode="after")
    def _one_answer(self) -> ResolvesParams:
        if self.to is not None and self.to_all is not None:
            raise ValueError("give to (one container) or to_all (every container sharing the name), not both")
        if not self.resolves and (self.to is not None or self.to_all is not None):
            raise ValueError("resolves: false takes no to or to_all (the name must give no address)")
        if self.to_all is not None and len(self.to_all) < 2:
            raise ValueError("to_all: name two containers or more (one is to:)")
        return self

    def probe(self) -> ProbeSpec:
        return ProbeSpec(action="resolve", origin=self.origin(), host=self.name)

    def place(self) -> str:
        """Where the name is looked up: the network, or the container it is looked up from."""
        return str(self.from_) if self.from_ is not None else self.network

    def address(self, snapshot: Snapshot, selector: Selector) -> str | None:
        """The address ``selector`` has where the name is looked up: on NETWORK, or, seen from
        the container FROM, on a network they share (or any it has)."""
        if self.from_ is not None:
            return next(iter(facts.addresses_from(snapshot, self.from_, selector)), None)
        return facts.address_of(snapshot, selector, self.network)


@check_kind("resolves", ResolvesParams)
@noting_shared_names
def resolves(p: ResolvesParams, snapshot: Snapshot) -> Verdict:
    """NAME resolves, from a container on NETWORK (or inside the container FROM), to the
    address that container TO has there, or to exactly the addresses of the containers TO_ALL
    (round robin: they share NAME as an alias); or does not resolve, with `resolves: false`. A
    lookup whose tool did not run (exit 125-127) is no evidence either way: an `error`."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    if (no_evidence := ran(result, p)) is not None:
        return no_evidence
    got = result.data.get("addresses", [])
    evidence = [result.key]
    place = p.place()
    if not p.resolves:
        return Verdict(
            not got,
            expected="no address",
            actual=got,
            evidence=evidence,
            message=_looked_up(p, got),
        )
    wanted = p.to_all if p.to_all is not None else [p.to] if p.to is not None else []
    want: list[str] = []
    for selector in wanted:
        address = p.address(snapshot, selector)
        if address is None:
            return _no_address(p, snapshot, selector, got, evidence)
        want.append(address)
    if not got:
        return Verdict(
            False,
            expected=", ".join(want) or "an address",
            actual=[],
            evidence=evidence,
            message=Text("{name} does not resolve on {where}", name=p.name, where=p.where()),
            hint=(
                Text("attach the container to a network {container} is on, with that name or alias", container=place)
                if p.from_ is not None
                else Text("attach the container to {network} with that name or alias", network=place)
            ),
        )
    if p.to_all is not None and sorted(set(want)) != sorted(got):
        return Verdict(
            False,
            expected=sorted(set(want)),
            actual=got,
            evidence=evidence,
            message=Text(
                "{name} resolves to {addresses}, but {containers} are at {wanted}",
                name=p.name,
                addresses=", ".join(got),
                containers=", ".join(map(str, p.to_all)),
                wanted=", ".join(want),
            ),
            hint=Text(
                "give each of {containers}, and no other running container, the alias {name}: "
                "docker network connect --alias {name} NETWORK CONTAINER",
                containers=", ".join(map(str, p.to_all)),
                name=p.name,
            ),
        )
    if p.to is not None and want[0] not in got:
        return Verdict(
            False,
            expected=want[0],
            actual=got,
            evidence=evidence,
            message=Text(
                "{name} resolves to {addresses}, but {container} is at {wanted} on {network}",
                name=p.name,
                addresses=", ".join(got),
                container=str(p.to),
                wanted=want[0],
                network=place,
            )
            if p.from_ is None
            else Text(
                "{name} resolves to {addresses} in {origin}, but {container} is at {wanted}",
                name=p.name,
                addresses=", ".join(got),
                origin=place,
                container=str(p.to),
                wanted=want[0],
            ),
            hint=Text("another container answers to {name} on {network}", name=p.name, network=place)
            if p.from_ is None
            else Text("another container answers to {name} there", name=p.name),
        )
    return Verdict(
        True, expected=", ".join(want) or "an address", actual=got, evidence=evidence, message=_found(p, got)
    )


def _looked_up(p: ResolvesParams, got: list[str]) -> Text:
    """What a lookup that must fail gave."""
    if p.from_ is not None:
        if got:
            return Text(
                "{name} resolves to {addresses} in {container}", name=p.name, addresses=got, container=p.place()
            )
        return Text("{name} resolves to nothing in {container}", name=p.name, container=p.place())
    if got:
        return Text("{name} on {network} resolves to {addresses}", name=p.name, network=p.network, addresses=got)
    return Text("{name} on {network} resolves to nothing", name=p.name, network=p.network)


def _found(p: ResolvesParams, got: list[str]) -> Text:
    addresses = ", ".join(got)
    if p.from_ is not None:
        return Text("{name} -> {addresses} in {container}", name=p.name, addresses=addresses, container=p.place())
    return Text("{name} -> {addresses} on {network}", name=p.name, addresses=addresses, network=p.network)


def _no_address(
    p: ResolvesParams, snapshot: Snapshot, selector: Selector, got: list[str], evidence: list[str]
) -> Verdict:
    """A container the name must give has no address where it is looked up."""
    name = selector.name or "<container>"
    if p.from_ is not None:
        return Verdict(
            False,
            expected=f"{p.name} -> {selector} from {p.from_}",
            actual=got,
            evidence=evidence,
            message=Text("{container} is not running: it has no address", container=str(selector)),
            hint=f"docker start {name}",
        )
    stopped = [c for c in facts.select(snapshot, selector) if p.network in facts.networks_of(c)]
    where = {"container": str(selector), "network": p.network}
    return Verdict(
        False,
        expected=f"{p.name} -> {selector} on {p.network}",
        actual=got,
        evidence=evidence,
        message=(
            Text("{container} has no address on {network} (it is not running)", **where)
            if stopped
            else Text("{container} has no address on {network}", **where)
        ),
        # A stopped container keeps its networks but has no address: connecting it fails.
        hint=f"docker start {name}" if stopped else f"docker network connect {p.network} {name}",
    )


class TargetParams(FromNetwork):
    host: str | None = Field(
        None, description="name to reach, as a student types it (several containers answer to it: the one named so)"
    )
    target: Selector | None = Field(None, description="or a container, reached at its address on NETWORK")

    @model_validator(mode="after")
    def _one_target(self) -> TargetParams:
        if (self.host is None) == (self.target is None):
            raise ValueError("give exactly one of host or target")
        return self

    def spec(self, action: str, port: int | None = None) -> ProbeSpec:
        return ProbeSpec(action=action, origin=self.origin(), host=self.host or "", target=self.target, port=port)

    def what(self) -> str:
        return self.host or str(self.target)


class ReachableParams(FromContainer, TargetParams):
    method: str = Field("ping", pattern="^(ping|tcp)$", description="ping, or tcp (needs port)")
    port: int | None = None
    reachable: bool = added(True, "false: it must NOT answer (from FROM: at none of its addresses)")

    @model_validator(mode="after")
    def _isolated_from(self) -> ReachableParams:
        if not self.reachable and self.target is not None and self.from_ is None:
            raise ValueError(
                "reachable: false with a target needs from: CONTAINER (from a network, a target is reached "
                "at its address there, which an isolated container does not have; or give host: NAME)"
            )
        return self

    def probe(self) -> ProbeSpec:
        return self.spec(self.method, self.port)


@check_kind("reachable", ReachableParams)
@noting_shared_names
def reachable(p: ReachableParams, snapshot: Snapshot) -> Verdict:
    """HOST (or TARGET) answers a ping, or accepts a TCP connection on PORT, from a container
    on NETWORK with LINKS, or from inside the running container FROM (a TARGET is tried at its
    address on a network the two share, else at every address it has); or, with `reachable:
    false`, does not (isolation). "Does not" needs evidence: a probe whose tool did not run
    (exit 125-127) is an `error`, never a pass."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    how = f"tcp/{p.port}" if p.method == "tcp" else "ping"
    if not result.ok and (no_evidence := ran(result, p)) is not None:
        return no_evidence
    passed = result.ok == p.reachable
    hint: str | Text = ""
    if not passed and p.reachable and p.from_ is not None:
        hint = Text("is {what} running, and on a network {where} is on?", what=p.what(), where=p.where())
    elif not passed and p.reachable:
        hint = Text("is {what} running and on {network}?", what=p.what(), network=p.network)
    elif not passed:
        hint = Text(
            "{what} must be on no network that {where} is on: docker network disconnect NETWORK {what}",
            what=p.what(),
            where=p.where(),
        )
    return Verdict(
        passed,
        expected=f"{p.what()} answers {how}" if p.reachable else f"{p.what()} does not answer {how}",
        actual=result.output.strip()[-300:] or None,
        evidence=[result.key],
        message=(
            Text("{target} answers {how} from {where}", target=p.what(), how=how, where=p.where())
            if result.ok
            else Text("{target} does not answer {how} from {where}", target=p.what(), how=how, where=p.where())
        ),
        hint=hint,
    )


class HttpParams(FromContainer, TargetParams):
    port: int = 3000
    pattern: Regex = Field(r"Total requests: (\d+)", description="regular expression the body must match")
    counter_rises: bool = Field(False, description="the pattern's first group is a number that rises")

    def probe(self) -> ProbeSpec:
        return self.spec("http", self.port)


@check_kind("http", HttpParams)
@noting_shared_names
def http(p: HttpParams, snapshot: Snapshot) -> Verdict:
    """An HTTP GET to HOST:PORT (or TARGET), from a container on NETWORK or from inside the
    running container FROM (as `reachable` tries a TARGET), answers with a body matching PATTERN; with
    `counter_rises`, the number in it rises between two requests. Half the points when it
    answers but does not count."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    bodies = [head(b) for b in result.data.get("bodies", [])]
    matches = [regex(p.pattern).search(b) for b in bodies]
    evidence = [result.key]
    if not bodies or not matches[0]:
        return Verdict(
            False,
            expected=p.pattern,
            actual=bodies or result.output.strip() or None,
            evidence=evidence,
            message=Text(
                "{target}:{port} did not answer with /{pattern}/", target=p.what(), port=p.port, pattern=p.pattern
            ),
            hint=Text("the app answers only when it can reach redis by that name on its network"),
        )
    if not p.counter_rises:
        return Verdict(True, expected=p.pattern, actual=bodies[0], evidence=evidence, message=bodies[0])
    counts = [int(m.group(1)) for m in matches if m]
    if len(counts) == 2 and counts[1] > counts[0]:
        return Verdict(
            True,
            expected="counter rises",
            actual=counts,
            evidence=evidence,
            message=Text("counter rose from {first} to {second}", first=counts[0], second=counts[1]),
        )
    return Verdict(
        False,
        expected="counter rises",
        actual=counts or bodies,
        evidence=evidence,
        fraction=0.5,
        message=Text("the counter did not rise: {bodies}", bodies=bodies),
        hint=Text("the app cannot store its count in redis"),
    )


class RedisPingParams(TargetParams):
    port: int = 6379

    def probe(self) -> ProbeSpec:
        return self.spec("redis_ping", self.port)


@check_kind("redis_ping", RedisPingParams)
@noting_shared_names
def redis_ping(p: RedisPingParams, snapshot: Snapshot) -> Verdict:
    """A Redis server answers `PING` with `+PONG` at HOST (or TARGET) on PORT, from NETWORK."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    reply = head(result.data.get("reply", ""))
    return Verdict(
        result.ok,
        expected="+PONG",
        actual=reply or result.output.strip()[-200:] or None,
        evidence=[result.key],
        message=Text("{target}:{port} answered {reply} to PING", target=p.what(), port=p.port, reply=repr(reply))
        if reply
        else Text("{target}:{port} answered 'nothing' to PING", target=p.what(), port=p.port),
        hint="" if result.ok else Text("is {what} a Redis server? run it from the redis image", what=p.what()),
    )


class CommandParams(Probed):
    container: Selector = Field(description="running container to exec into")
    argv: list[str] = Field(description="a read-only command, e.g. [cat, /etc/hosts]")
    expect: LineRegex = Field(description="regular expression the output must match (^ and $ at each line)")

    def probe(self) -> ProbeSpec:
        return ProbeSpec(action="command", origin=Origin(container=self.container), argv=tuple(self.argv))


@check_kind("command", CommandParams)
def command(p: CommandParams, snapshot: Snapshot) -> Verdict:
    """A read-only command run in a running container prints output matching EXPECT. The
    output is kept from its start, up to 1 MB: a command cut there is judged on what it
    printed (its end was never read), and the message says so."""
    result = probe_verdict(snapshot, p.probe())
    if isinstance(result, Verdict):
        return result
    cut_at = result.data.get("truncated_at")
    ok = (result.ok or cut_at is not None) and regex(p.expect, lines=True).search(result.output) is not None
    values = {"command": " ".join(p.argv), "container": str(p.container), "expected": p.expect}
    message = (
        Text("`{command}` in {container} matched /{expected}/", **values)
        if ok
        else Text("`{command}` in {container} did not match /{expected}/", **values)
    )
    if cut_at is not None:
        message = Text("{said} (in its first {size} bytes: the rest was not read)", said=message, size=cut_at)
    return Verdict(
        ok,
        expected=p.expect,
        actual=head(result.output.strip()),
        evidence=[result.key],
        message=message,
    )
