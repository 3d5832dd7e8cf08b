"""The check kinds read from the snapshot alone: mounts, port bindings (host address, UDP, not
published), network options (internal, subnet, gateway, IPv6, attachable, labels), a static
address on a network and a container's network mode. Pure: over the snapshots
tests/recorded/record.py recorded from the bench on both engines; the end-to-end run of the
same rubric is test_static_kinds_on_the_bench."""

from __future__ import annotations

import json
from functools import partial

import pytest
from bench.daemon import BenchDaemon
from recorded import cases
from recorded.cases import HEAD, VERSIONS, assert_cases_hold, by_id
from recorded.record import RUBRIC, clean

from grader.errors import RubricError
from grader.evaluate import evaluate, localised
from grader.outcome import Outcome
from grader.report import topology
from grader.report.charts import STATUS_CSS
from grader.rubric import load, parse
from grader.selftest import run_cases
from grader.snapshot import Snapshot

RECORDED = RUBRIC.parent / "static-kinds"
graded = partial(cases.graded, RUBRIC, "static-kinds")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_reference_gets_full_marks_and_each_mistake_fails_exactly_its_checks(version: str) -> None:
    assert_cases_hold(RUBRIC, "static-kinds", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_what_a_student_reads_when_the_networks_lack_their_options(version: str) -> None:
    checks = by_id(graded("mistake-1", version))
    recreate = "recreate it: docker network rm back; docker network create {} back"
    assert checks["back-internal"] == (
        "failed",
        "network back: internal is false, not true",
        recreate.format("--internal"),
    )
    assert checks["back-subnet"][1] == "network back: subnet is 172.31.0.0/24, not 172.30.0.0/24"
    # Docker 20.10 keeps no gateway it chose itself: it is the subnet's first address.
    assert checks["back-gateway"][1] == "network back: gateway is 172.31.0.1, not 172.30.0.1"
    assert checks["back-labels"] == (
        "failed",
        "network back: labels is none, not tier=back",
        recreate.format("--label tier=back"),
    )
    assert checks["v6-ipv6"][1] == "network v6: ipv6 is false, not true"
    assert checks["db-ip"] == (
        "failed",
        "db is on back without the static address 172.30.0.10 (given: none)",
        "docker network disconnect back db; docker network connect --ip 172.30.0.10 back db",
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_what_a_student_reads_when_ports_and_mounts_are_loosened(version: str) -> None:
    checks = by_id(graded("mistake-2", version))
    assert checks["web-html-ro"] == (
        "failed",
        "web: /usr/share/nginx/html is bind /tmp/grader-app-2 rw, expected bind /tmp/grader-app-2 ro",
        "remove it and run it again with -v /tmp/grader-app-2:/usr/share/nginx/html:ro",
    )
    assert checks["web-data-volume"][1] == "web: /data is bind /tmp/grader-data rw, expected volume webdata"
    assert checks["web-run-tmpfs"][1:] == (
        "web has nothing mounted on /run",
        "remove it and run it again with --tmpfs /run",
    )
    assert checks["web-81-local"] == (
        "failed",
        "web: 80/tcp is published on 0.0.0.0:81, [::]:81",
        "run it with -p 127.0.0.1:81:80",
    )
    assert checks["web-81-not-all"][1:] == (
        "web: 80/tcp is published on 0.0.0.0:81",
        "remove it and run it again without -p 81:80",
    )
    assert checks["web-dns-udp"][1:] == ("web: 53/udp is not published", "run it with -p 5353:53/udp")
    assert checks["db-not-published"][1:] == (
        "db: 6379/tcp is published on 0.0.0.0:6379",
        "remove it and run it again without -p 6379:6379",
    )
    assert checks["hostnet-mode"][1] == "hostnet runs with network bridge, not host"
    # Docker keeps the other container's ID: the student reads its name.
    assert checks["sidecar-mode"][1:] == (
        "sidecar runs with network container:db, not container:web",
        "remove it and run it again with --network container:web",
    )


def test_the_reference_says_what_it_found() -> None:
    checks = by_id(graded("reference", "28.5"))
    assert checks["web-81-local"][1] == "web: 80/tcp published on 127.0.0.1:81"
    assert checks["web-81-not-all"][1] == "web: 80/tcp is not published on 0.0.0.0:81"
    assert checks["web-8080-v6"][1] == "web: 3000/tcp published on [::]:8080"
    assert checks["web-run-tmpfs"][1] == "web: /run is tmpfs rw"
    assert checks["web-data-volume"][1] == "web: /data is volume webdata rw"
    assert checks["sidecar-mode"][1] == "sidecar is running, with network container:web"
    assert checks["back-internal"][1] == "network back: internal true"
    assert checks["db-ip"][1] == "db is on back at 172.30.0.10"


def in_indonesian(outcome: Outcome) -> dict[str, tuple[str, str]]:
    rubric = load(str(RUBRIC))
    return {c.id: (c.message, c.hint) for c in localised(outcome.checks, rubric, "id")}


def test_the_expected_topology_shows_the_static_address() -> None:
    outcome = graded("mistake-1", "20.10")
    drawn = topology.expected(load(str(RUBRIC)), outcome.checks).attachments
    assert ("db", "back", "172.30.0.10", STATUS_CSS["failed"]) in drawn


def test_the_messages_are_said_in_indonesian() -> None:
    said = in_indonesian(graded("mistake-2", "20.10"))
    assert said["web-html-ro"] == (
        "web: /usr/share/nginx/html adalah bind /tmp/grader-app-2 rw, seharusnya bind /tmp/grader-app-2 ro",
        "hapus lalu jalankan lagi dengan -v /tmp/grader-app-2:/usr/share/nginx/html:ro",
    )
    assert said["hostnet-mode"][0] == "hostnet berjalan dengan jaringan bridge, bukan host"
    assert said["db-not-published"][1] == "hapus lalu jalankan lagi tanpa -p 6379:6379"
    said = in_indonesian(graded("mistake-1", "28.5"))
    assert said["back-internal"] == (
        "jaringan back: internal bernilai false, bukan true",
        "buat ulang: docker network rm back; docker network create --internal back",
    )
    assert said["db-ip"][0] == "db tersambung ke back tanpa alamat statis 172.30.0.10 (yang diberikan: none)"


def test_several_options_of_a_network_in_one_check() -> None:
    rubric = parse(
        HEAD + "      - {id: back, title: t, network: {name: back, internal: true, subnet: 172.30.0.0/24, "
        "labels: {tier: back}}}\n",
        "x.yaml",
    )
    check = evaluate(rubric, Snapshot.from_json((RECORDED / "mistake-1@20.10.json").read_text())).checks[0]
    assert check.message == (
        "network back: internal is false, not true; subnet is 172.31.0.0/24, not 172.30.0.0/24; "
        "labels is none, not tier=back"
    )
    assert check.hint == (
        "recreate it: docker network rm back; docker network create --internal --subnet 172.30.0.0/24 "
        "--label tier=back back"
    )
    said = localised([check], rubric, "id")[0].message
    assert said.startswith("jaringan back: internal bernilai false, bukan true; subnet bernilai 172.31.0.0/24, bukan")


def test_rubrics_that_use_no_new_parameter_keep_their_digest() -> None:
    """The digest names a rubric in the store and in students' bundles: a kind or a parameter
    added since is left out of it wherever a rubric does not use it."""
    assert load("docker-networks").digest == "3af723feca469a0f0994b2e6bdae0b221ca0c0572a96871087bd6ba7f0ce474b"
    assert load("docker-links").digest == "b33997bc71cd14a206b9b4359facd406b8ba520872dbaa8922d906722f5103eb"
    dumped = json.dumps(load(str(RUBRIC)).model_dump(mode="json"))
    assert '"host_ip": "127.0.0.1"' in dumped and '"mount": {' in dumped


def problems(check: str) -> list[str]:
    with pytest.raises(RubricError) as caught:
        parse(HEAD + f"      - {{id: c, title: t, {check}}}\n", "x.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        (
            "network: {name: back, subnet: 172.30.0.1/24}",
            "x.yaml:7:49: tasks[0].checks[0].network.subnet: 172.30.0.1/24 has host bits set",
        ),
        (
            "network: {name: back, gateway: 172.30.0}",
            "x.yaml:7:49: tasks[0].checks[0].network.gateway: '172.30.0' does not appear to be an IPv4 or IPv6 address",
        ),
        (
            "network: {name: back, exists: false, internal: true}",
            "x.yaml:7:27: tasks[0].checks[0].network: "
            "internal: options of a network that exists, not with exists: false",
        ),
        (
            "network: {name: back, labels: [tier=back]}",
            "x.yaml:7:49: tasks[0].checks[0].network.labels: Input should be a valid dictionary",
        ),
        (
            "published_port: {container: web, port: 80, host_port: 81, protocol: UDP}",
            "x.yaml:7:85: tasks[0].checks[0].published_port.protocol: Input should be 'tcp', 'udp' or 'sctp'",
        ),
        (
            "published_port: {container: web, port: 80}",
            "x.yaml:7:27: tasks[0].checks[0].published_port: "
            "host_port: the host port it must be published on (only published: false may omit it)",
        ),
        (
            "published_port: {container: web, port: 80, host_port: 81, host_ip: localhost}",
            "x.yaml:7:85: tasks[0].checks[0].published_port.host_ip: "
            "'localhost' does not appear to be an IPv4 or IPv6 address",
        ),
        (
            "attached: {container: db, network: back, attached: false, ip: 172.30.0.10}",
            "x.yaml:7:27: tasks[0].checks[0].attached: "
            "ip: the address of a container that is attached, not with attached: false",
        ),
        (
            "mount: {container: web, destination: run, type: tmpfs}",
            "x.yaml:7:51: tasks[0].checks[0].mount.destination: String should match pattern '^/'",
        ),
        (
            "mount: {container: web, destination: /run, type: tmpfs, source: /tmp}",
            "x.yaml:7:27: tasks[0].checks[0].mount: source: a tmpfs has none (it lives in memory)",
        ),
        (
            "mount: {container: web, destination: /run, type: overlay}",
            "x.yaml:7:70: tasks[0].checks[0].mount.type: Input should be 'bind', 'volume' or 'tmpfs'",
        ),
        (
            "mount: {container: web, destination: /run, readonly: true}",
            "x.yaml:7:70: tasks[0].checks[0].mount.readonly: unknown field",
        ),
    ],
)
def test_a_wrong_parameter_is_a_located_error(check: str, problem: str) -> None:
    assert problems(check) == [problem]


@pytest.mark.docker
def test_static_kinds_on_the_bench(daemon: BenchDaemon) -> None:
    """The rubric's reference, played with the docker CLI, gets full marks on each engine, and
    each mistake fails exactly its checks."""
    try:
        results = run_cases(load(str(RUBRIC)), daemon.host, lambda port: None)
    finally:
        clean(daemon)
    assert [(r.name, r.failing, r.broken) for r in results if not r.held] == []
    assert [r.name for r in results] == ["reference", *(m.name for m in load(str(RUBRIC)).mistakes)]
