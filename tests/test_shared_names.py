"""A name that several containers answer to on a network: the reference lab 2 plus
`docker run -d --net backend-network --network-alias redis alpine sleep 3600` graded 22.5 or
25.5 at random (`redis-pong` followed whichever address the embedded DNS gave first), and no
message named the duplicate. The checks that reach the name judge the container the rubric
names, at its own address, and say who else answers."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from bench.daemon import BenchDaemon

from grader import facts
from grader.evaluate import evaluate, localised
from grader.probe.spec import Origin, ProbeSpec
from grader.rubric import load, parse
from grader.snapshot import Snapshot

GOLDEN = Path(__file__).parent / "golden"
SHARED = "redis on backend-network answers for 2 containers: redis, imp"


def with_impostors(case: str, *impostors: tuple[str, str, str]) -> Snapshot:
    """A recorded snapshot of the reference lab, plus for each (name, alias, address) a running
    container with that network alias on backend-network, as each engine shows it."""
    snapshot = Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())
    redis = next(c for c in snapshot.containers if c["Name"] == "/redis")
    added = []
    for number, (name, alias, address) in enumerate(impostors, 1):
        imp = copy.deepcopy(redis)
        ident = f"{number:x}".rjust(64, "f")
        imp.update(Id=ident, Name=f"/{name}")
        imp["Config"]["Hostname"] = ident[:12]
        endpoint = {"IPAddress": address, "Aliases": [alias, ident[:12]]}
        if "28.5" in case:  # API 1.45+: no short id in Aliases, every DNS name in DNSNames
            endpoint = {"IPAddress": address, "Aliases": [alias], "DNSNames": [name, alias, ident[:12]]}
        imp["NetworkSettings"]["Networks"] = {"backend-network": endpoint}
        added.append(imp)
    return snapshot.model_copy(update={"containers": [*snapshot.containers, *added]})


@pytest.mark.parametrize("case", ["networks-reference", "networks-reference@28.5"])
def test_the_container_named_so_is_reached_and_the_other_is_named(case: str) -> None:
    snapshot = with_impostors(case, ("imp", "redis", "172.18.0.9"))
    assert [facts.name_of(c) for c in facts.answering(snapshot, "redis", "backend-network")] == ["redis", "imp"]
    origin = Origin(network="backend-network")
    redis_at = facts.address_of(snapshot, facts.Selector(name="redis"), "backend-network")
    assert redis_at and redis_at != "172.18.0.9"
    assert ProbeSpec(action="redis_ping", origin=origin, host="redis", port=6379).address_in(snapshot) == redis_at
    assert ProbeSpec(action="resolve", origin=origin, host="redis").address_in(snapshot) is None  # a lookup is typed
    checks = {c.id: c for c in evaluate(load("docker-networks"), snapshot).checks}
    for check_id in ("redis-pong", "redis-resolves"):
        assert checks[check_id].status == "passed"
        assert checks[check_id].message.endswith(f" ({SHARED})"), checks[check_id].message
    [pong] = localised([checks["redis-pong"]], load("docker-networks"), "id")
    assert pong.message.endswith("(redis di backend-network dijawab oleh 2 kontainer: redis, imp)"), pong.message
    assert "answers for" not in checks["db-resolves"].message  # db on frontend-network2 is redis's alone


def test_a_name_no_container_of_that_name_shares_fails_on_that_fact() -> None:
    """Two containers with the alias cache and none named so: which one the DNS gives first is
    no evidence, and the probe's answer is never read."""
    imps = ("imp2", "cache", "172.18.0.10"), ("imp", "cache", "172.18.0.9")
    snapshot = with_impostors("networks-reference@28.5", *imps)
    rubric = parse(
        'id: t\ntitle: t\nversion: "1"\ntasks:\n  - title: t\n    checks:\n'
        "      - {id: pong, title: t, redis_ping: {network: backend-network, host: cache}}\n"
        "      - {id: ping, title: t, reachable: {network: backend-network, host: cache}}\n",
        "t.yaml",
    )
    for check in evaluate(rubric, snapshot).checks:
        assert check.status == "failed"
        assert check.message == "cache on backend-network answers for 2 containers: imp, imp2"
        assert check.hint == "give cache to one container on backend-network only"
        assert check.actual == ["imp", "imp2"]


def grader(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.docker
def test_an_impostor_with_the_labs_name_gives_a_stable_grade(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    imp = ("--name", "imp", "--net", "backend-network", "--network-alias", "redis", "alpine", "sleep", "3600")
    networks_lab.docker("run", "-d", *imp)
    redis_at = networks_lab.docker(
        "inspect", "-f", '{{(index .NetworkSettings.Networks "backend-network").IPAddress}}', "redis"
    ).stdout.strip()
    db = tmp_path / "g.db"
    scores, messages = set(), set()
    for _ in range(5):
        done = grader(
            "grade", "--rubric", "docker-networks", "--student", "s", "--docker-host", networks_lab.host,
            "--db", f"sqlite:///{db}", "--format", "json",
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        outcome = json.loads(done.stdout)
        scores.add(outcome["score"])
        pong = next(c for c in outcome["checks"] if c["id"] == "redis-pong")
        messages.add((pong["status"], pong["message"]))
    assert len(scores) == 1, scores
    assert messages == {("passed", f"redis:6379 answered '+PONG' to PING ({SHARED})")}
    with sqlite3.connect(db) as connection:
        bodies = [json.loads(body) for (body,) in connection.execute("SELECT body FROM snapshots")]
    assert {b["probes"]["redis_ping@net:backend-network:redis:6379"]["data"]["address"] for b in bodies} == {redis_at}
