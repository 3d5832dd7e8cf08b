"""Rules the evaluators share, over snapshots recorded from the bench and changed in memory
the way a student's daemon would differ (a tag, a stopped container, a twin)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from grader.evaluate import evaluate
from grader.rubric import load, parse
from grader.snapshot import Snapshot

GOLDEN = Path(__file__).parent / "golden"


def recorded(case: str) -> dict[str, Any]:
    return Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text()).model_dump(mode="json")


def named(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in raw["containers"] if c["Name"] == f"/{name}")


def outcome(raw: dict[str, Any], rubric_text: str | None = None) -> dict[str, Any]:
    rubric = parse(rubric_text, "r.yaml") if rubric_text else load("docker-networks")
    return {c.id: c for c in evaluate(rubric, Snapshot.model_validate(raw).sealed()).checks}


def rubric(*checks: str) -> str:
    return "id: r\ntitle: r\nversion: '1'\ntasks:\n  - title: t\n    checks:\n" + "".join(
        f"      - {c}\n" for c in checks
    )


def retag(raw: dict[str, Any], old: str, new: str) -> None:
    for image in raw["images"]:
        image["RepoTags"] = [new if t == old else t for t in image["RepoTags"]]
    for c in raw["containers"]:
        if c["Config"]["Image"] == old.removesuffix(":latest"):
            c["Config"]["Image"] = new


def test_an_image_without_a_tag_is_met_by_any_tag_of_its_repository() -> None:
    raw = recorded("networks-reference")
    retag(raw, "redis:latest", "redis:7")
    checks = outcome(
        raw,
        rubric(
            "{id: any-tag, title: a, container: {container: redis, image: redis}}",
            "{id: that-tag, title: b, container: {container: redis, image: 'redis:7'}}",
            "{id: other-tag, title: c, container: {container: redis, image: 'redis:6'}}",
            "{id: by-image, title: d, attached: {container: {image: redis}, network: backend-network}}",
        ),
    )
    assert {k: c.status for k, c in checks.items()} == {
        "any-tag": "passed",
        "that-tag": "passed",
        "other-tag": "failed",
        "by-image": "passed",
    }


def test_a_container_created_but_never_started_did_not_run() -> None:
    """`docker run --net=NAME alpine env` on a network that does not exist creates a container
    that never starts."""
    raw = recorded("networks-reference")
    ran_env = rubric("{id: ran-env, title: r, ran: {image: alpine, command: '^env$', network: backend-network}}")
    assert outcome(raw, ran_env)["ran-env"].status == "passed"
    for c in raw["containers"]:
        if c["Config"]["Image"] == "alpine":
            c["State"].update(Status="created", Running=False, StartedAt="0001-01-01T00:00:00Z", ExitCode=0)
    assert outcome(raw, ran_env)["ran-env"].status == "failed"


def test_any_matching_container_meets_a_check_and_every_one_a_must_not() -> None:
    """A twin of the app by image, the one on frontend-network published on 3000, the other on
    3001: the port check passes and names the one that meets it; a "must not be attached"
    check fails if any twin is attached."""
    raw = recorded("networks-reference")
    app = next(c for c in raw["containers"] if c["Config"]["Image"] == "katacoda/redis-node-docker-example")
    twin = copy.deepcopy(app)
    twin["Id"], twin["Name"] = "f" * 64, "/twin"
    twin["HostConfig"]["PortBindings"] = {"3000/tcp": [{"HostIp": "", "HostPort": "3001"}]}
    twin["NetworkSettings"]["Ports"] = {"3000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "3001"}]}
    twin["NetworkSettings"]["Networks"] = {"backend-network": app["NetworkSettings"]["Networks"]["frontend-network"]}
    raw["containers"].insert(0, twin)
    image = "{image: katacoda/redis-node-docker-example}"
    checks = outcome(
        raw,
        rubric(
            f"{{id: port, title: p, published_port: {{container: {image}, port: 3000, host_port: 3000}}}}",
            f"{{id: not-on, title: n, attached: {{container: {image}, network: backend-network, attached: false}}}}",
        ),
    )
    assert checks["port"].status == "passed" and checks["port"].message.startswith(app["Name"][1:])
    assert checks["not-on"].status == "failed" and checks["not-on"].message == "twin is still on backend-network"


def test_a_stopped_target_is_told_to_start_not_to_connect() -> None:
    raw = recorded("networks-reference")
    redis = named(raw, "redis")
    redis["State"].update(Status="exited", Running=False)
    for endpoint in redis["NetworkSettings"]["Networks"].values():
        endpoint["IPAddress"] = ""
    check = outcome(raw)["redis-resolves"]
    assert check.hint.startswith("docker start redis"), check


# The catastrophic pattern over 36 characters of a student's command line, in a child process:
# with Python's re the evaluation ran past a minute of CPU; RE2 takes microseconds.
SLOW_PATTERN_IN_CHILD = r"""
import sys, time
sys.path[:0] = [sys.argv[1]]
from grader.rubric import parse
from test_check_rules import outcome, recorded, rubric
raw = recorded("networks-reference")
for c in raw["containers"]:
    if c["Config"]["Image"] == "alpine":
        c["Config"]["Cmd"] = ["sh", "a" * 36 + "!"]
text = rubric("{id: ran, title: r, ran: {image: alpine, command: '^(\\w+\\s?)*$'}}")
assert parse(text, "r.yaml").checks()[0][1].ran.command == "^(\\w+\\s?)*$"
start = time.process_time()
status = outcome(raw, text)["ran"].status
print(status, time.process_time() - start)
"""


@pytest.mark.parametrize("length", [36, 5000], ids=["remembered", "longer than remembered"])
def test_a_rubric_regex_runs_in_linear_time_on_student_text(length: int) -> None:
    # A short command line's answer is remembered (regex.found), a long one's searched each time.
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            SLOW_PATTERN_IN_CHILD.replace('"a" * 36', f'"a" * {length}'),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    status, seconds = child.stdout.split()
    assert status == "failed"  # `sh aaa…a!` does not match: no word is followed by `!`
    assert float(seconds) < 1


@pytest.mark.parametrize("others", [2, 400], ids=["remembered", "too many names to remember"])
def test_a_typo_is_told_among_few_names_or_many(others: int) -> None:
    # The closest name is remembered for a short question (the live class asks the same at every
    # check); a question of many names (a student's daemon decides how many) is asked each time.
    from grader.checks.objects import _closest, _near
    from grader.i18n import Text

    names = [*(f"student-net-{i:04d}" for i in range(others)), "backend_network"]
    remembered = _closest.cache_info().currsize
    for _ in range(2):
        told = _near(Text("no network {name}", name="backend-network"), "backend-network", names)
        assert told == "no network backend-network (found 'backend_network': a typo?)"
    assert _closest.cache_info().currsize == remembered + (others == 2)
