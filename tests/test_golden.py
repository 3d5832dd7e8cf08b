"""Evaluators over snapshots recorded from the real bench (tests/golden/record.py).
Pure: no Docker. ``python tests/golden/record.py`` re-records them; review the diff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden.record import expected

from grader.evaluate import evaluate
from grader.rubric import parse
from grader.snapshot import Snapshot

CASES = sorted(p for p in (Path(__file__).parent / "golden").iterdir() if (p / "snapshot.json").exists())


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_outcome_matches_golden(case: Path) -> None:
    rubric_id = (case / "rubric").read_text().strip()
    assert expected(case, rubric_id) == (case / "expected.json").read_text()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_snapshot_digest_holds(case: Path) -> None:
    snapshot = Snapshot.from_json((case / "snapshot.json").read_text())
    assert snapshot.verify()
    tampered = json.loads((case / "snapshot.json").read_text())
    tampered["containers"] = tampered["containers"][1:] or [{"Id": "x"}]
    assert not Snapshot.model_validate(tampered).verify()


def test_reference_cases_score_full_marks() -> None:
    for name in ("links-reference", "networks-reference"):
        outcome = json.loads((Path(__file__).parent / "golden" / name / "expected.json").read_text())
        assert all(c["status"] == "passed" for c in outcome["checks"]), name


def test_a_missing_network_suggests_only_a_near_name() -> None:
    """On the typo daemon (backend_network, frontend-network, frontend-network2): a missing
    network suggests a name one keystroke away, never a merely similar one that a student
    mid-lab has rightly created for another step."""
    snapshot = Snapshot.from_json((Path(__file__).parent / "golden" / "networks-typo" / "snapshot.json").read_text())
    rubric = parse(
        "id: t\ntitle: t\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: typo, title: t, network: {name: backend-network}}\n"
        "      - {id: later, title: t, network: {name: middle-network}}\n",
        "t.yaml",
    )
    messages = {c.id: c.message for c in evaluate(rubric, snapshot).checks}
    assert messages["typo"].endswith("(found 'backend_network': a typo?)")
    assert "typo" not in messages["later"]


BASES = sorted({c.name.split("@")[0] for c in CASES})


@pytest.mark.parametrize("base", BASES)
def test_the_engines_agree_check_by_check(base: str) -> None:
    """The same lab state recorded on Docker 20.10 and 28.5, and derived for 29, is graded the
    same check by check (the messages may say how each engine showed it)."""
    outcomes = {}
    for suffix in ("", "@28.5", "@29-derived"):
        outcome = json.loads((Path(__file__).parent / "golden" / f"{base}{suffix}" / "expected.json").read_text())
        outcomes[suffix or "@20.10"] = [(c["id"], c["status"], c["points"]) for c in outcome["checks"]]
    assert outcomes["@20.10"] == outcomes["@28.5"] == outcomes["@29-derived"]


def test_docker_29_links_count_through_hosts_and_host_config() -> None:
    """A lab-1 student on Docker 29 (no link variables, no top-level addresses): full marks; the
    link step is proved by /etc/hosts and HostConfig.Links, the variables check is not applicable."""
    case = Path(__file__).parent / "golden" / "links-reference@29-derived"
    snapshot = Snapshot.from_json((case / "snapshot.json").read_text())
    assert snapshot.verify() and snapshot.engine["ApiVersion"] == "1.52"
    assert all("IPAddress" not in c["NetworkSettings"] for c in snapshot.containers)
    [env] = [p for p in snapshot.probes.values() if p.kind == "env"]
    assert env.data["vars"] and not [v for v in env.data["vars"] if v.startswith("REDIS_")]
    outcome = {c["id"]: c for c in json.loads((case / "expected.json").read_text())["checks"]}
    assert all(c["status"] == "passed" for c in outcome.values())
    assert outcome["link-env"]["message"].startswith("not applicable on this engine: Docker 29.0.0")
    assert outcome["hosts-entry"]["message"].startswith("172.17.0.")
    assert "linked to redis-server as redis" in outcome["app-link"]["message"]
