"""Compose selectors: a container by its service (``{service: web}``, ``project:``), a network
by its name in the compose file (``{compose_network: back}``), both by Compose's labels. Pure:
over the bundled Compose lab's cases, recorded on both engines by tests/recorded/record.py
(project ``shop``); its end-to-end run is test_rubric_test.py's test_the_compose_rubric_holds."""

from __future__ import annotations

from functools import partial

import pytest
from recorded import cases
from recorded.cases import HEAD, VERSIONS, assert_cases_hold, by_id
from recorded.record import RUBRICS

from grader.errors import RubricError
from grader.evaluate import evaluate, localised
from grader.report import topology
from grader.report.charts import STATUS_CSS
from grader.rubric import load, parse

RECORDED = RUBRICS["static-kinds"].parent / "compose"
snapshot = partial(cases.snapshot, "compose")
graded = partial(cases.graded, RUBRICS["compose"], "compose")


def checks(*lines: str) -> str:
    return HEAD + "".join(f"      - {line}\n" for line in lines)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_reference_gets_full_marks_and_each_mistake_fails_exactly_its_checks(version: str) -> None:
    assert_cases_hold(RUBRICS["compose"], "compose", version)


@pytest.mark.parametrize("version", VERSIONS)
def test_what_a_student_reads_for_typical_compose_mistakes(version: str) -> None:
    on_front = by_id(graded("mistake-1", version))
    compose = "change db's networks: in the compose file, then: docker compose up -d"
    assert on_front["db-not-front"] == (
        "failed",
        "shop-db-1 is still on shop_front",
        f"{compose} db belongs on back only: networks: [back]",
    )
    assert by_id(graded("mistake-2", version))["db-back"][1] == (
        "shop-db-1 is on shop_back with aliases ['db']; expected alias database"
    )
    assert by_id(graded("mistake-3", version))["web-back"] == (
        "failed",
        "shop-web-1 is on shop_front, not on shop_back",
        "change web's networks: in the compose file, then: docker compose up -d",
    )
    renamed = by_id(graded("mistake-4", version))
    assert renamed["redis"] == ("failed", "no container service redis", "start it: docker compose up -d")
    undeclared = by_id(graded("mistake-5", version))
    assert undeclared["back"][:2] == ("failed", "no Compose network back")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_project_narrows_a_selector(version: str) -> None:
    rubric = parse(
        checks(
            "{id: shop-web, title: t, container: {container: {service: web, project: shop}}}",
            "{id: other-web, title: t, container: {container: {service: web, project: other}}}",
            "{id: by-name, title: t, container: {container: shop-web-1}}",
            "{id: shop-back, title: t, network: {name: {compose_network: back, project: shop}}}",
            "{id: other-back, title: t, network: {name: {compose_network: back, project: other}}}",
            "{id: plain-back, title: t, network: {name: back}}",
            "{id: web-on, title: t, attached: {container: {service: web}, network: {compose_network: back}}}",
        ),
        "lab.yaml",
    )
    results = by_id(evaluate(rubric, snapshot("reference", version)))
    assert [k for k, v in results.items() if v[0] == "passed"] == ["shop-web", "by-name", "shop-back", "web-on"]
    assert results["other-web"][1:] == ("no container service web of project other", "start it: docker compose up -d")
    assert results["other-back"][1] == "no Compose network back in project other"
    assert results["plain-back"][1] == "no network back (shop_back is Compose's network back)"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            "{id: a, title: a, container: {container: {service: web, name: web}}}",
            "lab.yaml:7:39: tasks[0].checks[0].container.container: give exactly one of name, image or service",
        ),
        (
            "{id: a, title: a, container: {container: {name: web, project: shop}}}",
            "lab.yaml:7:39: tasks[0].checks[0].container.container: "
            "project: the Compose project of a service; give it with service",
        ),
        (
            "{id: a, title: a, container: {container: {servce: web}}}",
            "lab.yaml:7:51: tasks[0].checks[0].container.container.servce: unknown field",
        ),
        (
            "{id: a, title: a, network: {name: {compose_network: back, projct: shop}}}",
            "lab.yaml:7:67: tasks[0].checks[0].network.name.projct: unknown field",
        ),
        (
            "{id: a, title: a, network: {name: {compose: back}}}",
            "lab.yaml:7:44: tasks[0].checks[0].network.name.compose: unknown field",
        ),
        (
            "{id: a, title: a, attached: {container: {service: web}, network: 5}}",
            "lab.yaml:7:65: tasks[0].checks[0].attached.network: a string, not the number 5",
        ),
    ],
)
def test_a_selector_slip_is_located(line: str, error: str) -> None:
    with pytest.raises(RubricError) as caught:
        parse(checks(line), "lab.yaml")
    assert any(problem.startswith(error) for problem in caught.value.problems), caught.value.problems


def test_a_case_writes_its_files_by_a_plain_name() -> None:
    body = checks("{id: a, title: a, network: {name: x}}") + "reference:\n  - {write: ../compose.yaml, text: x}\n"
    with pytest.raises(RubricError) as caught:
        parse(body, "lab.yaml")
    assert caught.value.problems == [
        "lab.yaml:9:6: reference[0].write: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]*$'"
    ]


def test_the_expected_topology_and_the_indonesian_messages_name_compose_networks() -> None:
    outcome = graded("mistake-1", "28.5")
    drawn = topology.expected(load("docker-compose"), outcome.checks)
    assert (
        "service db",
        "Compose network front",
        "not attached",
        STATUS_CSS["failed"] + " absent",
    ) in drawn.attachments
    topology.layout(drawn)  # networks named by a mapping are drawn as any other
    said = {
        c.id: (c.message, c.hint) for c in localised(graded("mistake-5", "20.10").checks, load("docker-compose"), "id")
    }
    assert said["back"][0] == "tidak ada jaringan Compose back"
    said = {c.id: (c.message, c.hint) for c in localised(outcome.checks, load("docker-compose"), "id")}
    assert said["db-not-front"][1].startswith("ubah networks: milik db di berkas compose, lalu: docker compose up -d")
