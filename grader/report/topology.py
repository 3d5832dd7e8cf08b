"""Pictures of a daemon's topology: networks, containers, their attachments (with aliases and
addresses) and legacy links. The observed one is read from a Snapshot with ``grader.facts``;
the expected one is derived from a rubric's network, container, attached and link checks,
each element coloured by its check's status in the attempt."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import facts
from ..i18n import translator
from ..outcome import CheckResult
from ..rubric.model import Rubric
from ..snapshot import Snapshot
from ..text import SHORT, head, printable
from .charts import STATUS_CSS

# Networks every engine has; drawn only when a container is on them.
BUILTIN = {"bridge", "host", "none"}


@dataclass
class Graph:
    networks: dict[str, str] = field(default_factory=dict)  # name -> css class
    containers: dict[str, str] = field(default_factory=dict)  # name -> css class
    details: dict[str, str] = field(default_factory=dict)  # node name -> tooltip
    attachments: list[tuple[str, str, str, str]] = field(default_factory=list)  # container, network, label, css
    links: list[tuple[str, str, str, str]] = field(default_factory=list)  # container, target, alias, css

    def attach(self, container: str, network: str, label: str, css: str) -> None:
        self.networks.setdefault(network, "")
        self.containers.setdefault(container, "")
        self.attachments.append((container, network, label, css))

    def link(self, container: str, target: str, alias: str, css: str) -> None:
        self.containers.setdefault(container, "")
        self.containers.setdefault(target, "")
        self.links.append((container, target, alias, css))


def observed(snapshot: Snapshot) -> Graph:
    graph = Graph()
    for net in snapshot.networks:
        name = str(net.get("Name", ""))  # a stored snapshot's JSON may be odd: read it as text
        if name not in BUILTIN:
            graph.networks[name] = ""
            graph.details[name] = f"{name} ({net.get('Driver', '?')})"
    for c in facts.students_containers(snapshot):
        name = facts.name_of(c)
        graph.containers[name] = "running" if facts.is_running(c) else "stopped"
        graph.details[name] = f"{name}: {facts.image_of(c) or '?'}, {facts.state_of(c)}"
        for net, endpoint in facts.networks_of(c).items():
            label = " ".join(filter(None, [facts.address_on(c, net), *facts.aliases_on(c, endpoint)]))
            graph.attach(name, net, label, "")
        for target, alias in facts.links_of(c):
            graph.link(name, target, alias, "")
    return graph


def expected(rubric: Rubric, results: list[CheckResult], lang: str = "en") -> Graph:
    status = {r.id: STATUS_CSS[r.status] for r in results}
    _ = translator(lang)
    graph = Graph()
    for _number, check in rubric.checks():
        css = status.get(check.id, "u")  # not evaluated in this attempt
        p = check.params
        if check.kind == "network":
            graph.networks[str(p.name)] = css if p.exists else f"{css} absent"  # a Compose network too
            graph.details[str(p.name)] = f"{check.id}: {check.title_in(lang)}"
        elif check.kind == "container":
            graph.containers[str(p.container)] = css
            graph.details[str(p.container)] = f"{check.id}: {check.title_in(lang)}"
        elif check.kind == "attached":
            label = " ".join(filter(None, [p.ip, *p.aliases])) if p.attached else _("not attached")
            graph.attach(str(p.container), str(p.network), label, css if p.attached else f"{css} absent")
        elif check.kind == "link":
            graph.link(str(p.container), p.target, p.alias, css)
    return graph


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    height: float
    text: str
    title: str
    css: str


@dataclass(frozen=True)
class Line:
    path: str  # SVG path data
    label: str
    lx: float
    ly: float
    anchor: str
    css: str


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    box_width: int
    networks: list[Box]
    containers: list[Box]
    lines: list[Line]


BOX_WIDTH, NET_HEIGHT, ROW, SLOT, PAD = 170, 24, 34, 16, 5
NET_X, CONTAINER_X = 8, 300
MAX_TEXT = 22


def _short(text: str, size: int = MAX_TEXT - 1) -> str:
    """``text`` as drawn: ``printable`` (a bidi override drawn raw would reverse the name, an
    escape would be a box), then cut, so that the escapes count in its length."""
    return head(printable(text), size)


def layout(graph: Graph) -> Picture:
    """Networks in a column on the left, containers on the right, ordered by their first
    network so lines cross less. A container has one slot per attachment, so each line
    (labelled with address and aliases) meets it at its own height; links are arcs on the right."""
    rank = {n: i for i, n in enumerate(graph.networks)}
    slots: dict[str, list[tuple[str, str, str]]] = {c: [] for c in graph.containers}
    for container, network, label, css in sorted(graph.attachments, key=lambda a: rank[a[1]]):
        slots[container].append((network, label, css))
    order = sorted(graph.containers, key=lambda c: rank[slots[c][0][0]] if slots[c] else len(rank))
    n_y = {n: 8 + i * ROW for i, n in enumerate(graph.networks)}
    boxes, lines, middle, y = [], [], {}, 8.0
    for c in order:
        height = max(len(slots[c]), 1) * SLOT + 2 * PAD
        title = _short(graph.details.get(c, c), SHORT)
        boxes.append(Box(CONTAINER_X, y, height, _short(c), title, graph.containers[c]))
        middle[c] = y + height / 2
        for j, (network, label, css) in enumerate(slots[c]):
            x1, y1 = NET_X + BOX_WIDTH, n_y[network] + NET_HEIGHT / 2
            x2, y2 = CONTAINER_X, y + PAD + (j + 0.5) * SLOT
            lines.append(Line(f"M{x1},{y1} L{x2},{y2}", _short(label, SHORT), x2 - 6, y2 - 3, "end", css))
        y += height + 10
    right = CONTAINER_X + BOX_WIDTH
    reach = 0.0
    for container, target, alias, css in graph.links:
        y1, y2 = middle[container], middle[target]
        bend = 24 + 10 * abs(y2 - y1) / ROW
        reach = max(reach, bend)
        path = f"M{right},{y1} C{right + bend},{y1} {right + bend},{y2} {right},{y2}"
        lines.append(Line(path, _short(f"link {alias}", SHORT), right + 6, y1 - 4, "start", f"link {css}"))
    height = max(y, 8 + len(graph.networks) * ROW, 40)
    return Picture(
        width=round(right + max(reach, 60) + 8),
        height=round(height),
        box_width=BOX_WIDTH,
        networks=[
            Box(NET_X, n_y[n], NET_HEIGHT, _short(n), _short(graph.details.get(n, n), SHORT), graph.networks[n])
            for n in graph.networks
        ],
        containers=boxes,
        lines=lines,
    )
