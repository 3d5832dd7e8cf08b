"""What a check asks the daemon: a probe's origin (a probe container on a network, with
legacy links, or an exec into a student's container) and its action. A check kind builds its
specs once, in its parameters' ``probes()``; the planner, the collector and the evaluator all
use those objects, and find a result by the spec's ``key``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from .. import facts
from ..facts import Selector

if TYPE_CHECKING:
    from ..facts import Container
    from ..snapshot import ProbeResult, Snapshot

Action = Literal["env", "hosts", "resolv", "resolve", "ping", "tcp", "http", "redis_ping", "command"]
REACHING = frozenset({"ping", "tcp", "http", "redis_ping"})  # actions that reach a host, not look it up
ACTION_TIMEOUT = 8  # seconds for one probe action inside the probe container
# Docker's embedded DNS answers a container's name or alias at once; a name it does not know
# goes to the host's resolvers, which on an offline lab machine never answer (20 s on the bench).
RESOLVE_TIMEOUT = 3


class Origin(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    network: str | None = None
    links: tuple[str, ...] = ()
    container: Selector | None = None

    @property
    def key(self) -> str:
        if self.container is not None:
            return f"exec:{self.container}"
        return "net:" + "+".join([self.network or "bridge", *self.links])


class ProbeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    origin: Origin
    host: str = ""  # a name to look up or reach, as a student would type it
    target: Selector | None = None  # or a container, reached at its address on the origin's network
    port: int | None = None
    argv: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Where the result is found in a snapshot. A name to look up (``host``), a container
        reached at its address (``target``, in angle brackets, which no host name has) and a
        command (``argv``) never share a key."""
        what = f"<{self.target}>" if self.target is not None else self.host or " ".join(self.argv)
        port = f":{self.port}" if self.port else ""
        return f"{self.action}@{self.origin.key}:{what}{port}"

    @property
    def legacy_key(self) -> str:
        """The key of snapshots taken before grader 0.2, where a host and a target of the same
        name shared one key."""
        what = self.host or (str(self.target) if self.target else "") or " ".join(self.argv)
        port = f":{self.port}" if self.port else ""
        return f"{self.action}@{self.origin.key}:{what}{port}"

    def shared_by(self, snapshot: Snapshot) -> list[Container]:
        """The containers that answer to this probe's host name on its network, when more than
        one does (Docker's DNS then gives them in any order); otherwise none."""
        if not self.host or self.origin.container is not None:
            return []
        found = facts.answering(snapshot, self.host, self.origin.network or "bridge")
        return found if len(found) > 1 else []

    def address_in(self, snapshot: Snapshot) -> str | None:
        """The address this probe reaches in ``snapshot``: a target's address on the origin's
        network; for a host name several containers answer to, the address of the one named
        so (the rubric's), not whichever the DNS gives first. None: the name as a student types it."""
        network = self.origin.network or "bridge"
        if self.target is not None:
            return facts.address_of(snapshot, self.target, network)
        if self.action in REACHING and self.shared_by(snapshot):
            return facts.address_of(snapshot, Selector(name=self.host), network)
        return None

    def addresses_in(self, snapshot: Snapshot) -> list[str] | None:
        """The addresses this probe tries, in turn: a target reached from a student's container
        at its addresses seen from there (``facts.addresses_from``), else ``address_in``'s. None:
        the name as a student types it; empty: a target with no address to try."""
        if self.target is not None and self.origin.container is not None:
            return facts.addresses_from(snapshot, self.origin.container, self.target)
        address = self.address_in(snapshot)
        if address is None:
            return [] if self.target is not None else None
        return [address]

    def fingerprint(self, snapshot: Snapshot) -> str:
        """What this probe's answer depends on in ``snapshot``: the running containers on the
        origin's network (their names, aliases, addresses, and when they started), or the
        container it execs into, with, for a name it looks up or a host it reaches from there,
        the members of every network that container (and a target) is on. Equal fingerprints
        of two snapshots: the probe would answer the same, and a watcher need not run it again."""
        if self.origin.container is not None:
            found = facts.select(snapshot, self.origin.container)
            state = [(c.get("Id"), facts.is_running(c), _started(c), sorted(facts.networks_of(c))) for c in found]
            if self.action == "command":
                return _digest(state)
            reached = [*found, *(facts.select(snapshot, self.target) if self.target else [])]
            networks = sorted({name for c in reached for name in facts.networks_of(c)})
            return _digest((state, [_members(snapshot, name) for name in networks]))
        return _digest(_members(snapshot, self.origin.network or "bridge"))

    def result_in(self, snapshot: Snapshot) -> ProbeResult | None:
        """This probe's result in ``snapshot``. In an older snapshot, a result under the legacy
        key counts only if it is of this spec's kind: a target's result carries the address it
        was reached at, a host's does not."""
        found = snapshot.probes.get(self.key)
        if found is None:
            found = snapshot.probes.get(self.legacy_key)
            if found is not None and ("address" in found.data) != (self.target is not None):
                return None
        return found


def timeout_for(spec: ProbeSpec) -> int:
    """Seconds one probe action may take."""
    return RESOLVE_TIMEOUT if spec.action == "resolve" else ACTION_TIMEOUT


def _members(snapshot: Snapshot, network: str) -> tuple[object, list[tuple[object, ...]]]:
    """A network's id and its running members (names, addresses, aliases, when they started).
    Only running containers answer on a network: a `docker run --rm` helper that came and went
    leaves it as it was."""
    net = facts.network(snapshot, network)
    members = [
        (c.get("Id"), facts.name_of(c), _started(c), facts.address_on(c, network), aliases)
        for c in facts.students_containers(snapshot)
        if facts.is_running(c)
        for name, endpoint in facts.networks_of(c).items()
        if name == network
        for aliases in [sorted(facts.aliases_on(c, endpoint))]
    ]
    return net.get("Id") if net else None, sorted(members, key=repr)


def _started(container: dict[str, object]) -> object:
    state = container.get("State")
    return state.get("StartedAt") if isinstance(state, dict) else None


def _digest(facts_read: object) -> str:
    return hashlib.sha256(repr(facts_read).encode()).hexdigest()[:16]
