"""Probes run inside a student's container (``from``), isolation (``reachable: false``), lookups
that must fail (with evidence that the probe ran) and round robin (``resolves`` ``to_all``).
Pure: over the snapshots tests/recorded/record.py recorded from the bench on both engines (with
the probes' results); the end-to-end runs are the docker-host-ports and docker-round-robin labs'
in tests/test_rubric_test.py."""

from __future__ import annotations

from functools import partial

import pytest
from recorded import cases
from recorded.cases import HEAD, VERSIONS, assert_cases_hold, by_id
from recorded.record import PROBES

from grader import facts
from grader.errors import RubricError
from grader.evaluate import evaluate
from grader.facts import Selector
from grader.probe.script import command_for
from grader.probe.spec import Origin, ProbeSpec
from grader.rubric import parse
from grader.snapshot import Snapshot

RECORDED = PROBES.parent / "probes"
graded = partial(cases.graded, PROBES, "probes")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_reference_gets_full_marks_and_each_mistake_fails_exactly_its_checks(version: str) -> None:
    assert_cases_hold(PROBES, "probes", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_probes_run_inside_the_students_containers(version: str) -> None:
    snapshot = Snapshot.from_json((RECORDED / f"reference@{version}.json").read_text())
    checks = by_id(graded("reference", version))
    assert checks["web-from-client"] == ("passed", "<h1>Welcome to nginx!</h1>", "")
    assert checks["db-isolated"] == ("passed", "db does not answer ping from client", "")
    assert checks["db-isolated-tcp"][:2] == ("passed", "db does not answer tcp/6379 from client")
    assert checks["db-unknown"][:2] == ("passed", "db resolves to nothing in client")
    # The lookups ran in client itself: the exec's results, no probe container's.
    assert snapshot.probes["resolve@exec:client:db"].data["exit_code"] not in (125, 126, 127)
    # hostnet shares no network with web: web is tried at every address it has (one here).
    tried = snapshot.probes["http@exec:hostnet:<web>:80"]
    assert tried.ok and tried.data["address"] == checks["web-resolves"][1].split()[2]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_shared_alias_resolves_to_every_container_that_has_it(version: str) -> None:
    reference = by_id(graded("reference", version))
    first, second = reference["search-rr"][1].removeprefix("search -> ").removesuffix(" in client").split(", ")
    assert first != second
    assert reference["search-rr-net"][1].startswith(f"search -> {first}, {second} on front")
    snapshot = Snapshot.from_json((RECORDED / f"mistake-2@{version}.json").read_text())
    web, web2 = (facts.address_of(snapshot, Selector(name=n), "front") for n in ("web", "web2"))
    mistake = by_id(graded("mistake-2", version))  # web2 has no alias
    assert mistake["search-rr"] == (
        "failed",
        f"search resolves to {web}, but web, web2 are at {web}, {web2}",
        "give each of web, web2, and no other running container, the alias search: "
        "docker network connect --alias search NETWORK CONTAINER",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_isolation_that_does_not_hold_fails_with_what_answered(version: str) -> None:
    checks = by_id(graded("mistake-1", version))  # client on back as well
    assert checks["db-isolated"] == (
        "failed",
        "db answers ping from client",
        "db must be on no network that client is on: docker network disconnect NETWORK db",
    )
    assert checks["db-unknown"][0] == "failed" and checks["db-unknown"][1].startswith("db resolves to ['172.")
    stopped = by_id(graded("mistake-4", version))  # a container that is not running is no isolation
    assert stopped["db-isolated"][:2] == ("failed", "no running container db to reach")
    assert stopped["db-isolated-net"][0] == "passed"  # the name no longer resolves on front


@pytest.mark.parametrize("version", VERSIONS)
def test_no_evidence_no_verdict_when_the_tool_is_missing(version: str) -> None:
    """client has no ping: "db does not answer" is not shown by that, nor is "web answers"."""
    checks = by_id(graded("mistake-3", version))
    assert checks["db-isolated"][:2] == ("error", "the probe did not run in client (exit 127): no evidence")
    assert checks["web-pings"][0] == "error"
    assert checks["db-isolated-tcp"][0] == "passed"  # nc is there


def test_several_addresses_are_tried_in_turn_each_bounded() -> None:
    spec = ProbeSpec(action="http", origin=Origin(container="client"), target="web", port=80)
    assert command_for(spec, ["10.0.0.2"]) == (
        "wget -q -O - http://10.0.0.2:80/ && { echo; echo '--- second request ---'; wget -q -O - http://10.0.0.2:80/; }"
    )
    both = command_for(spec, ["10.0.0.2", "10.0.1.2"])
    assert both.startswith('t=; command -v timeout >/dev/null 2>&1 && t="timeout 3"; { $t wget -q -O - http://10.0.0.2')
    assert " || { $t wget -q -O - http://10.0.1.2:80/ && " in both


AT = "lab.yaml:7:27: tasks[0].checks[0]."


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (
            "reachable: {target: db, reachable: false}",
            AT + "reachable: reachable: false with a target needs from: CONTAINER (from a network, a target is "
            "reached at its address there, which an isolated container does not have; or give host: NAME)",
        ),
        (
            "reachable: {from: web, network: back, target: db}",
            AT + "reachable: give from (a container to probe from) or network and links, not both",
        ),
        ("resolves: {name: search, to_all: [es1]}", AT + "resolves: to_all: name two containers or more (one is to:)"),
        (
            "resolves: {name: search, to: es1, to_all: [es1, es2]}",
            AT + "resolves: give to (one container) or to_all (every container sharing the name), not both",
        ),
        (
            "resolves: {name: db, from: web, resolves: false, to: db}",
            AT + "resolves: resolves: false takes no to or to_all (the name must give no address)",
        ),
        (
            "http: {from: {name: web, image: nginx}, host: app}",
            "lab.yaml:7:34: tasks[0].checks[0].http.from: give exactly one of name, image or service",
        ),
        ("reachable: {frm: web, host: db}", "lab.yaml:7:39: tasks[0].checks[0].reachable.frm: unknown field"),
    ],
)
def test_slips_in_probe_parameters_are_located(check: str, error: str) -> None:
    with pytest.raises(RubricError) as caught:
        parse(HEAD + "      - {id: c, title: c, " + check + "}\n", "lab.yaml")
    assert str(caught.value) == error


def test_a_rubric_that_uses_no_new_parameter_keeps_its_digest() -> None:
    """from, reachable and to_all are left out of the digest where unused (the bundled rubrics'
    digests are pinned in test_static_kinds)."""
    plain = parse(HEAD + "      - {id: c, title: c, reachable: {host: db}, }\n", "lab.yaml")
    assert plain.model_dump(mode="json")["tasks"][0]["checks"][0]["reachable"] == {
        "network": "bridge",
        "links": [],
        "host": "db",
        "target": None,
        "method": "ping",
        "port": None,
    }


@pytest.mark.parametrize("version", VERSIONS)
def test_a_container_that_cannot_reach_what_it_must(version: str) -> None:
    """The isolation probe's own result read the other way (the same probe, `reachable: true`)."""
    snapshot = Snapshot.from_json((RECORDED / f"reference@{version}.json").read_text())
    rubric = parse(HEAD + "      - {id: c, title: c, reachable: {from: client, target: db}}\n", "lab.yaml")
    assert by_id(evaluate(rubric, snapshot))["c"] == (
        "failed",
        "db does not answer ping from client",
        "is db running, and on a network client is on?",
    )


def test_a_watcher_looks_up_again_from_a_container_when_a_network_it_is_on_changes() -> None:
    """Removing web2 (``docker rm -f web2``) changes what search gives in client, not client
    itself: a lookup from client runs again, a command in client is kept."""
    before = Snapshot.from_json((RECORDED / "reference@28.5.json").read_text())
    after = before.model_copy(update={"containers": [c for c in before.containers if facts.name_of(c) != "web2"]})
    lookup = ProbeSpec(action="resolve", origin=Origin(container=Selector(name="client")), host="search")
    reach = ProbeSpec(action="ping", origin=Origin(container=Selector(name="hostnet")), target=Selector(name="web2"))
    command = ProbeSpec(action="command", origin=Origin(container=Selector(name="client")), argv=("hostname",))
    assert lookup.fingerprint(before) != lookup.fingerprint(after)
    assert reach.fingerprint(before) != reach.fingerprint(after)  # hostnet shares no network with web2
    assert command.fingerprint(before) == command.fingerprint(after)
