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
        "id: t\ntitle: t\nversion: 1\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: typo, title: t, network: {name: backend-network}}\n"
        "      - {id: later, title: t, network: {name: middle-network}}\n",
        "t.yaml",
    )
    messages = {c.id: c.message for c in evaluate(rubric, snapshot).checks}
    assert messages["typo"].endswith("(found 'backend_network': a typo?)")
    assert "typo" not in messages["later"]
