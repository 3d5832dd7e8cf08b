"""What a student controls cannot take over the terminal, stall a grade, or crash one: names
with control characters or console markup are shown escaped, a megabyte command costs no more
than a short one, and a bundle's odd JSON shapes read as missing facts. Pure: the recorded
golden snapshots, changed in memory."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from rich.console import Console

from grader import facts, render
from grader.batch import Result
from grader.cli import _batch_summary
from grader.evaluate import evaluate
from grader.grading import Graded
from grader.outcome import Outcome
from grader.report import topology
from grader.rubric import load
from grader.snapshot import Snapshot
from grader.text import HEAD, SHORT, bounded, head, printable

GOLDEN = Path(__file__).parent / "golden"
PWNED = "\x1b[2J\x1b[31mPWNED"  # clears the screen, then writes in red


def recorded(case: str) -> dict[str, Any]:
    """A golden snapshot's JSON, to change (the file stays as recorded)."""
    return json.loads((GOLDEN / case / "snapshot.json").read_text())


def container(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in raw["containers"] if c["Name"] == f"/{name}")


def statuses(outcome: Outcome) -> dict[str, str]:
    return {c.id: c.status for c in outcome.checks}


def graded(raw: dict[str, Any], student: str = "student") -> Graded:
    snapshot = Snapshot.model_validate(raw)
    rubric = load("docker-networks")
    return Graded(student, rubric, snapshot, evaluate(rubric, snapshot), "2026-01-01T00:00:00+00:00")


def table(result: Graded) -> str:
    out = StringIO()
    render.print_table(result, Console(file=out, force_terminal=True, width=120))
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),  # ESC
        ("a\x9bb", "a\\x9bb"),  # C1 CSI: ESC [ in one byte for some terminals
        ("\x00\x07\x7f", "\\x00\\x07\\x7f"),
        ("\r\t", "\\r\\t"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # bidi override
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("one\ntwo", "one\ntwo"),  # a line break stays one
        ("redis 中文 é 🐳 [bold]", "redis 中文 é 🐳 [bold]"),
    ],
)
def test_printable_escapes_what_a_terminal_acts_on(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_head_is_marked_where_cut() -> None:
    assert head("ping redis") == "ping redis"
    assert head("x" * (HEAD + 1)) == "x" * HEAD + "…"


def test_html_keeps_tabs_and_escapes_the_rest() -> None:
    """The report's way (a browser shows a tab as spaces); a terminal's cell would be pushed."""
    assert printable("127.0.0.1\tlocalhost\u202e\x1b", tabs=True) == "127.0.0.1\tlocalhost\\u202e\\x1b"
    assert printable("a\tb") == "a\\tb"


def test_a_long_name_is_cut_in_every_sentence_and_kept_in_the_values() -> None:
    """A 10,000-character container name: its checks' messages (every way out: terminal, report,
    exports) say its first SHORT characters and "…"; the result's actual value keeps it whole."""
    raw = recorded("networks-reference")
    pinger = next(c for c in raw["containers"] if c["Config"]["Cmd"][:1] == ["ping"])
    pinger["Name"] = "/" + "x" * 10_000
    ping = next(c for c in graded(raw).outcome.checks if c.id == "ping-ran")
    assert len(ping.message) < 300 and "x" * SHORT + "…" in ping.message
    assert ping.actual["container"] == "x" * 10_000
    assert bounded({"container": "x" * 10_000, "n": [1, "y" * 300]}) == {
        "container": "x" * SHORT + "…",
        "n": [1, "y" * SHORT + "…"],
    }


def test_a_megabyte_command_grades_as_fast_as_a_short_one() -> None:
    """A container that ran a 1 MB ``sh -c "ping ping …"``, older than every helper, is the
    first each ``ran`` check reads; ``ping .*redis`` over all of it took a minute."""
    raw = recorded("networks-reference")
    reference = statuses(evaluate(load("docker-networks"), Snapshot.model_validate(raw)))
    helper = next(c for c in raw["containers"] if c["Config"]["Image"] == "alpine")
    hostile = copy.deepcopy(helper)
    hostile.update(Id="f" * 64, Name="/hostile", Created="2000-01-01T00:00:00Z")
    hostile["State"].update(Status="exited", Running=False)  # it ran: `ran` reads its command
    hostile["Config"]["Cmd"] = ["sh", "-c", "ping " * 200_000 + "redis"]
    raw["containers"].append(hostile)
    start = time.perf_counter()
    result = graded(raw)
    assert time.perf_counter() - start < 5  # 0.003 s measured; the unbounded search took 58 s
    assert statuses(result.outcome) == reference
    assert max(len(json.dumps(c.actual)) for c in result.outcome.checks) < 2 * HEAD


def test_a_hundred_thousand_aliases_are_read_in_linear_time_and_shown_in_part() -> None:
    raw = recorded("networks-reference")
    endpoint = container(raw, "redis")["NetworkSettings"]["Networks"]["frontend-network2"]
    endpoint["Aliases"] = [f"alias{i}" for i in range(100_000)] + ["db"]
    start = time.perf_counter()
    result = graded(raw)
    out = table(result)
    assert time.perf_counter() - start < 5  # 0.1 s measured; looking each alias up in a list took 121 s
    assert statuses(result.outcome)["redis-alias-db"] == "passed"
    assert len(out) < 100_000  # the message quotes all 1.4 MB of them; its cell shows the head


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(c: dict[str, Any]) -> None:
        for key in path[:-1]:
            c = c[key]
        c[path[-1]] = value

    return change


ODD_CONTAINERS = {
    "Config a list": _set("Config", value=[]),
    "State a string": _set("State", value="running"),
    "Networks a list": _set("NetworkSettings", "Networks", value=["backend-network"]),
    "an endpoint a string": _set("NetworkSettings", "Networks", "backend-network", value="x"),
    "NetworkSettings null": _set("NetworkSettings", value=None),
    "Name an int": _set("Name", value=7),
    "Id a list": _set("Id", value=["x"]),
    "Image a dict": _set("Image", value={}),
    "Created an int": _set("Created", value=1),
    "HostConfig a string": _set("HostConfig", value="x"),
    "Links of ints": _set("HostConfig", "Links", value=[1, 2]),
    "PortBindings a list": _set("HostConfig", "PortBindings", value=[1]),
    "bindings of strings": _set("HostConfig", "PortBindings", value={"6379/tcp": ["x"]}),
    "Labels a list": _set("Config", "Labels", value=["grader.probe"]),
    "Cmd a string": _set("Config", "Cmd", value="env"),
    "Aliases a string": _set("NetworkSettings", "Networks", "backend-network", "Aliases", value="redis"),
    "IPAddress an int": _set("NetworkSettings", "Networks", "backend-network", "IPAddress", value=1),
}


@pytest.mark.parametrize("change", ODD_CONTAINERS.values(), ids=ODD_CONTAINERS.keys())
def test_an_odd_container_reads_as_missing_facts(change: Callable[[dict[str, Any]], None]) -> None:
    raw = recorded("networks-reference")
    odd = container(raw, "redis")
    change(odd)
    result = graded(raw)
    assert not [c.message for c in result.outcome.checks if c.message.startswith("could not evaluate")]
    assert statuses(result.outcome)["frontend-network"] == "passed"  # the rest is graded as before
    readers = [facts.name_of, facts.is_probe, facts.is_running, facts.state_of, facts.image_of, facts.command_of]
    readers += [facts.network_mode, facts.networks_of, facts.links_of, facts.published]
    for read in readers:
        read(odd)
    for endpoint in facts.networks_of(odd).values():
        facts.aliases_on(odd, endpoint)
    topology.observed(result.snapshot)  # the attempt page's drawing of what was observed


def test_odd_networks_images_and_engine_read_as_missing() -> None:
    raw = recorded("networks-reference")
    raw["networks"].append({"Name": 7, "Driver": []})
    raw["images"].append({"Id": ["x"], "RepoTags": "redis"})
    raw["engine"]["Version"] = "²⁸.1" + "9" * 5000
    result = graded(raw)
    assert not [c.message for c in result.outcome.checks if c.message.startswith("could not evaluate")]
    assert facts.engine_version(result.snapshot) == (0, 0)  # neither piece is a number int() reads


def pwned_network() -> dict[str, Any]:
    """The reference daemon with redis moved from frontend-network2 to a network named with a
    terminal escape: the message that redis is not on frontend-network2 names where it is."""
    raw = recorded("networks-reference")
    twin = copy.deepcopy(next(n for n in raw["networks"] if n["Name"] == "frontend-network2"))
    raw["networks"].append({**twin, "Name": PWNED})
    networks = container(raw, "redis")["NetworkSettings"]["Networks"]
    networks[PWNED] = networks.pop("frontend-network2")
    return raw


def test_a_table_shows_an_escape_named_network_escaped() -> None:
    result = graded(pwned_network(), student="bad[/]name\u202e")
    assert PWNED in next(c.message for c in result.outcome.checks if c.id == "redis-alias-db")
    out = table(result)
    assert PWNED not in out and "\x1b[2J" not in out and "\u202e" not in out
    assert "\\x1b[2J\\x1b[31mPWNED" in out
    assert "bad[/]name\\u202e" in out


def test_json_keeps_names_as_they_are() -> None:
    result = graded(pwned_network())
    checks = json.loads(render.as_json(result))["checks"]
    assert PWNED in next(c["message"] for c in checks if c["id"] == "redis-alias-db")


def test_junit_with_esc_and_nul_is_well_formed_xml() -> None:
    raw = pwned_network()
    result = graded(raw, student="st\x00u\x1bdent")
    suites = ET.fromstring(render.as_junit(result))
    suite = suites.find("testsuite")
    assert suite is not None and suite.get("name") == "docker-networks:st\\x00u\\x1bdent"
    failure = suites.find(".//testcase[@name='redis-alias-db']/failure")
    assert failure is not None and "\\x1b[2J\\x1b[31mPWNED" in (failure.get("message") or "")


def test_batch_summary_shows_markup_and_escapes_as_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the summary's own Console: no cell folded
    results = [
        Result("bad[/]name", "graded", 10, 10, seconds=1.0),
        Result("[bold]loud", "unreachable", error=f"no daemon at {PWNED}"),
    ]
    stderr = StringIO()
    _batch_summary(results, Console(file=stderr, width=200))
    out = capsys.readouterr().out
    assert "bad[/]name" in out and "[bold]loud" in out
    assert "\x1b" not in out and "\\x1b[2J\\x1b[31mPWNED" in out
    assert "graded 1 of 2 daemons" in stderr.getvalue()
