"""No evidence, no verdict: a probe whose output comes back cut short (Docker 20.10 sometimes
returns an exec stream without its output although the exec ran) is run once more, and
otherwise an ``error``, never ``failed`` and never ``passed``, for "must not" checks above all.
The probe script really runs here, in the host's shell, through the runner's own parsing."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from grader.evaluate import evaluate
from grader.probe.runner import ProbeRunner
from grader.probe.script import OUTPUT_CAP, Script
from grader.probe.spec import Origin, ProbeSpec
from grader.rubric import load
from grader.snapshot import Snapshot

GOLDEN = Path(__file__).parent / "golden"


def runner_for(snapshot: Snapshot) -> ProbeRunner:
    runner = ProbeRunner.__new__(ProbeRunner)  # no daemon: only the script and its parsing are used
    runner.snapshot = Future()
    runner.snapshot.set_result(snapshot)
    runner.cancelled = threading.Event()
    return runner


def sh(run: Script) -> bytes:
    """The script run as Docker runs an exec: a session (and process group) of its own."""
    return subprocess.run(["sh", "-c", run.text], capture_output=True, timeout=30, start_new_session=True).stdout


def test_a_cut_short_stream_is_run_again() -> None:
    snapshot = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    calls: list[str] = []

    def flaky(run: Script) -> bytes:
        calls.append(run.text)
        return b"" if len(calls) == 1 else sh(run)

    spec = ProbeSpec(action="env", origin=Origin(network="backend-network"))
    [result] = runner_for(snapshot)._run(spec.origin, [spec], flaky).values()
    assert len(calls) == 2 and result.error is None and result.ok and "PATH" in result.data["vars"]


def test_no_output_each_time_is_an_error_for_a_must_not_check() -> None:
    """`no-link-env` (no REDIS_* variables on backend-network) passed on an empty stream before."""
    rubric = load("docker-networks")
    snapshot = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    specs = [s for s in rubric.probes() if s.action in ("env", "hosts")]
    origin = specs[0].origin
    mine = [s for s in specs if s.origin == origin]
    results = runner_for(snapshot)._run(origin, mine, lambda run: b"")
    assert {r.error for r in results.values()} == {"the probe's output was cut short, each time it ran"}
    probes = {**snapshot.probes, **results}
    outcome = evaluate(rubric, snapshot.model_copy(update={"probes": probes}).sealed())
    statuses = {c.id: c.status for c in outcome.checks}
    assert statuses["no-link-env"] == "error" and statuses["no-hosts-entry"] == "error"


def test_a_huge_output_is_kept_from_its_start_up_to_the_cap() -> None:
    snapshot = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    spec = ProbeSpec(
        action="command", origin=Origin(network="backend-network"), argv=("head", "-c", "5000000", "/dev/zero")
    )
    [result] = runner_for(snapshot)._run(spec.origin, [spec], sh).values()
    assert result.data["truncated_at"] == OUTPUT_CAP and len(result.output) == OUTPUT_CAP


def test_a_name_and_a_container_of_that_name_are_two_probes(tmp_path: Path) -> None:
    """`{host: redis}` looks the name up; `{target: redis}` reaches the container at its address.
    They shared one key, so one check silently read the other's result."""
    rubric_file = tmp_path / "two.yaml"
    rubric_file.write_text(
        "id: two\ntitle: two\nversion: '1'\ntasks:\n  - title: t\n    checks:\n"
        "      - {id: by-name, title: n, redis_ping: {network: backend-network, host: redis}}\n"
        "      - {id: by-address, title: a, redis_ping: {network: backend-network, target: redis}}\n"
    )
    rubric = load(str(rubric_file))
    by_name, by_address = (c.probes()[0] for _, c in rubric.checks())
    assert by_name.key != by_address.key
    snapshot = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    [found] = [p for p in snapshot.probes.values() if p.kind == "redis_ping"]
    only_name = snapshot.model_copy(update={"probes": {by_name.key: found.model_copy(update={"key": by_name.key})}})
    statuses = {c.id: c.status for c in evaluate(rubric, only_name).checks}
    assert statuses == {"by-name": "passed", "by-address": "error"}  # never the name's answer


def test_each_command_gets_its_own_output_and_leaves_no_child() -> None:
    """A command's output without a final newline swallowed the next section's header, and a
    child it left holding that output held the whole script (and the grade) until it died."""
    snapshot = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    origin = Origin(network="backend-network")
    held = ProbeSpec(action="command", origin=origin, argv=("sh", "-c", "printf 'no newline'; sleep 100017 &"))
    second = ProbeSpec(action="command", origin=origin, argv=("echo", "second"))
    started = time.monotonic()
    results = runner_for(snapshot)._run(origin, [held, second], sh)
    assert time.monotonic() - started < 5
    assert (results[held.key].output, results[second.key].output) == ("no newline", "second\n")
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"100017" in _read(p)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile
        return b""
