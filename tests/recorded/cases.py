"""What the pure tests over recorded cases share: a rubric's cases, recorded on both engines by
record.py (``FOLDER/CASE@ENGINE.json``), read back and graded without Docker."""

from __future__ import annotations

from pathlib import Path

from grader.evaluate import evaluate
from grader.outcome import Outcome
from grader.rubric import load
from grader.snapshot import Snapshot

HERE = Path(__file__).parent
VERSIONS = ("20.10", "28.5")
HEAD = "id: lab\ntitle: Lab\nversion: '1'\ntasks:\n  - title: one\n    checks:\n"  # a rubric's first lines


def snapshot(folder: str, case: str, version: str) -> Snapshot:
    """The case's snapshot recorded on Docker ``version``, its digest checked."""
    found = Snapshot.from_json((HERE / folder / f"{case}@{version}.json").read_text())
    assert found.verify()
    return found


def graded(rubric: Path, folder: str, case: str, version: str) -> Outcome:
    return evaluate(load(str(rubric)), snapshot(folder, case, version))


def by_id(outcome: Outcome) -> dict[str, tuple[str, str, str]]:
    """Check id -> (status, message, hint), in English."""
    return {c.id: (c.status, str(c.message), str(c.hint)) for c in outcome.checks}


def assert_cases_hold(rubric: Path, folder: str, version: str) -> None:
    """The reference gets full marks, and each mistake fails exactly the checks it names."""
    reference = graded(rubric, folder, "reference", version)
    assert reference.score == reference.max_score > 0
    for number, mistake in enumerate(load(str(rubric)).mistakes, 1):
        outcome = graded(rubric, folder, f"mistake-{number}", version)
        assert [c.id for c in outcome.checks if not c.passed] == mistake.fails, mistake.name
