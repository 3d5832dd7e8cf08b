"""The ``resolve`` probe read from what real probe images print, recorded on the bench by
tests/userland/record.py on 20.10 and 28.5: glibc's ``getent`` (the bench's ``alpine``; real
Alpine has musl's, same format) and busybox's ``nslookup`` (``alpine-busybox``: busybox only),
whose answer names the resolver first (``Server:``/``Address: 127.0.0.11:53``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grader.probe.script import command_for, parse
from grader.probe.spec import Origin, ProbeSpec

RECORDED = json.loads((Path(__file__).parent / "userland" / "resolve.json").read_text())
CASES: list[dict[str, Any]] = RECORDED["cases"]


def engine(case: dict[str, Any]) -> str:
    """``20.10.24+dfsg1`` -> ``20.10``."""
    return ".".join(case["engine"].split(".")[:2])


def spec_of(case: dict[str, Any]) -> ProbeSpec:
    return ProbeSpec(action="resolve", origin=Origin(network=case["network"]), host=case["name"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{engine(c)}-{c['image']}-{c['network']}-{c['name']}")
def test_a_lookup_reads_as_the_address_on_that_network(case: dict[str, Any]) -> None:
    spec = spec_of(case)
    assert command_for(spec, None) == case["command"]  # recorded from the grader's own command
    ok, data = parse(spec, case["rc"], case["output"])
    assert data["addresses"] == case["addresses"]
    assert ok == bool(case["addresses"])


def test_busybox_names_its_resolver_before_the_answer() -> None:
    """The resolver's address comes first and is not an answer: the parser skips 127.x."""
    answered = [c for c in CASES if c["image"] == "alpine-busybox" and c["addresses"]]
    assert {engine(c) for c in answered} == {"20.10", "28.5"}
    for case in answered:
        output = case["output"]
        assert "getent: not found" in output
        assert output.index("Address:\t127.0.0.11:53") < output.index(f"Name:\t{case['name']}")
        assert output.index(f"Name:\t{case['name']}") < output.index(f"Address: {case['addresses'][0]}")
    assert RECORDED["busybox"].startswith("BusyBox v1.")


def test_an_unknown_name_waits_on_20_10_and_fails_at_once_on_28_5() -> None:
    """On a user network 20.10's embedded DNS forwards a name it does not know to resolvers
    that never answer, so the lookup is cut by the probe's timeout (124, or 143 when the shell
    is killed); 28.5's answers SERVFAIL at once. Both read as "does not resolve"."""
    unknown = [c for c in CASES if not c["addresses"]]
    assert {(engine(c), c["image"]) for c in unknown} == {
        (e, i) for e in ("20.10", "28.5") for i in ("alpine", "alpine-busybox")
    }
    for case in unknown:
        if engine(case) == "20.10":
            assert case["rc"] in (124, 143), case
        else:
            assert case["rc"] == 1 and "SERVFAIL" in case["output"], case
        assert parse(spec_of(case), case["rc"], case["output"]) == (False, {"exit_code": case["rc"], "addresses": []})
