"""The rubric loader: every problem is reported as ``file:line:col: path: message``, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader import __version__
from grader.checks import KINDS
from grader.cli import main
from grader.errors import RubricError, UsageError
from grader.rubric import bundled, load, parse, resolve

HEAD = "id: lab\ntitle: Lab\nversion: 1\ntasks:\n  - title: one\n    checks:\n"
# Lines 1-6 are HEAD; the first check starts on line 7 (`      - id: net`, the id key at column 9).
GOOD = HEAD + "      - id: net\n        title: the network exists\n        network: {name: backend}\n"
KIND_KEYS = ", ".join(KINDS)
BUNDLED = "bundled rubrics: docker-links, docker-networks (or give a .yaml file)"


def problems(text: str) -> list[str]:
    with pytest.raises(RubricError) as caught:
        parse(text, "x.yaml")
    return caught.value.problems


def test_good_rubric_parses() -> None:
    rubric = parse(GOOD, "x.yaml")
    assert (rubric.id, rubric.version, [c.kind for _, c in rubric.checks()]) == (
        "lab",
        "1",
        ["network"],
    )


def test_unknown_field_points_at_the_key() -> None:
    text = (
        HEAD
        + "      - id: net\n        title: t\n        network:\n"
        + "          driver: bridge\n          nmae: backend\n"
    )
    assert problems(text) == [
        "x.yaml:9:9: tasks[0].checks[0].network.name: field required",
        "x.yaml:11:11: tasks[0].checks[0].network.nmae: unknown field",
    ]


def test_unknown_optional_field_alone() -> None:
    text = HEAD + "      - id: net\n        title: t\n        network: {name: backend, drivr: overlay}\n"
    assert problems(text) == ["x.yaml:9:34: tasks[0].checks[0].network.drivr: unknown field"]


def test_unknown_top_level_field() -> None:
    assert problems("titel: x\n" + GOOD) == [
        "x.yaml:1:1: titel: unknown field",
    ]


def test_missing_field_points_at_the_parent() -> None:
    text = HEAD + "      - id: net\n        network: {name: backend}\n"
    assert problems(text) == ["x.yaml:7:9: tasks[0].checks[0].title: field required"]


def test_missing_top_level_field() -> None:
    assert problems(GOOD.replace("title: Lab\n", "")) == ["x.yaml:1:1: title: field required"]


def test_wrong_type() -> None:
    text = HEAD + "      - id: net\n        title: t\n        points: lots\n        network: {name: n}\n"
    assert problems(text) == [
        "x.yaml:9:9: tasks[0].checks[0].points: Input should be a valid number, unable to parse string as a number",
    ]


def test_wrong_type_of_a_parameter() -> None:
    text = HEAD + "      - id: net\n        title: t\n        network: {name: n, exists: maybe}\n"
    assert problems(text) == [
        "x.yaml:9:28: tasks[0].checks[0].network.exists: Input should be a valid boolean, unable to interpret input",
    ]


def test_check_with_two_kinds() -> None:
    text = GOOD + "        container: {container: redis}\n"
    assert problems(text) == [
        f"x.yaml:7:9: tasks[0].checks[0]: a check needs exactly one kind key of: {KIND_KEYS} (got network, container)",
    ]


def test_check_with_no_kind() -> None:
    text = HEAD + "      - id: net\n        title: t\n"
    assert problems(text) == [
        f"x.yaml:7:9: tasks[0].checks[0]: a check needs exactly one kind key of: {KIND_KEYS} (got none)",
    ]


def test_duplicate_check_id_points_at_the_second() -> None:
    text = GOOD + "      - id: net\n        title: again\n        network: {name: other}\n"
    assert problems(text) == ["x.yaml:10:9: tasks[0].checks[1].id: check id 'net' is used twice"]


def test_needs_an_unknown_check() -> None:
    text = GOOD + "      - id: app\n        title: t\n" + "        needs: [net, nope]\n        network: {name: m}\n"
    assert problems(text) == [
        "x.yaml:12:22: tasks[0].checks[1].needs[1]: check 'app' needs 'nope', which is not a check defined before it",
    ]


def test_needs_a_later_check() -> None:
    text = (
        HEAD
        + "      - id: first\n        title: t\n"
        + "        needs: [second]\n        network: {name: n}\n"
        + "  - title: two\n    checks:\n"
        + "      - id: second\n        title: t\n        network: {name: m}\n"
    )
    assert problems(text) == [
        "x.yaml:9:17: tasks[0].checks[0].needs[0]: "
        "check 'first' needs 'second', which is not a check defined before it",
    ]


def test_duplicate_yaml_key() -> None:
    text = GOOD + "        network: {name: other}\n"
    assert problems(text) == ["x.yaml:10:9: tasks[0].checks[0].network: duplicate key (first on line 9)"]


def test_yaml_syntax_error() -> None:
    # libyaml says "did not find expected ',' or ']'", PyYAML's own parser "expected ',' or ']', but got ':'".
    [problem] = problems("id: lab\ntitle: [unclosed\nversion: 1\n")
    assert problem.startswith("x.yaml:3:8: yaml: ")
    assert "expected ',' or ']'" in problem


def test_yaml_tag_that_does_not_construct() -> None:
    assert problems("id: !!python/object:os.system x\n") == [
        "x.yaml:1:5: yaml: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
    ]


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    assert problems(text) == ["x.yaml:1:1: the file is empty"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n"])
def test_top_level_not_a_mapping(text: str) -> None:
    assert problems(text) == ["x.yaml:1:1: a rubric is a mapping (id, title, version, tasks)"]


def test_every_problem_is_reported() -> None:
    text = "id: Lab\ntitle: L\nversion: 1\ntasks: []\n"
    assert problems(text) == [
        "x.yaml:1:1: id: String should match pattern '^[a-z0-9][a-z0-9_-]*$'",
        "x.yaml:4:1: tasks: List should have at least 1 item after validation, not 0",
    ]


@pytest.mark.parametrize("rubric_id", ["docker-links", "docker-networks"])
def test_bundled_rubrics_load(rubric_id: str) -> None:
    rubric = load(rubric_id)
    assert rubric.id == rubric_id
    assert rubric.checks()


def test_bundled_ids() -> None:
    assert sorted(bundled()) == ["docker-links", "docker-networks"]


def test_resolve_unknown_id_names_the_bundled_ones() -> None:
    with pytest.raises(UsageError) as caught:
        resolve("docker-linkz")
    assert str(caught.value) == ("unknown rubric 'docker-linkz'; " + BUNDLED)
    assert caught.value.exit_code == 2


def test_resolve_missing_file() -> None:
    with pytest.raises(UsageError, match=r"^no rubric file nowhere\.yaml$"):
        resolve("nowhere.yaml")


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("title: Lab\n", ""), encoding="utf-8")
    with pytest.raises(RubricError) as caught:
        load(path)
    assert caught.value.problems == [f"{path}:1:1: title: field required"]


# --- the CLI -------------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_validate_bad_file_exits_78_with_the_located_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + "      - id: net\n        title: t\n        network: {nmae: n, name: n}\n")
    result = run("rubrics", "validate", str(path))
    assert result.exit_code == 78
    assert result.stderr == f"{path}:9:19: tasks[0].checks[0].network.nmae: unknown field\n"
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_validate_reports_every_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text("")
    result = run("rubrics", "validate", str(good), str(bad))
    assert result.exit_code == 78
    assert result.stdout == f"{good}: ok (lab v1, 1 checks)\n"
    assert result.stderr == f"{bad}:1:1: the file is empty\n"


def test_validate_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    result = run("rubrics", "validate", str(path))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"{path}: ok (lab v1, 1 checks)\n"


def test_validate_bundled_files() -> None:
    result = run("rubrics", "validate", *(str(p) for p in bundled().values()))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count(": ok (") == 2


def test_rubrics_list() -> None:
    result = run("rubrics", "list")
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        "docker-links",
        "docker-networks",
    ]


def test_rubrics_show() -> None:
    result = run("rubrics", "show", "docker-links")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("docker-links v")
    assert "redis-server-running" in result.stdout


def test_rubrics_show_unknown_id_is_a_usage_error() -> None:
    result = run("rubrics", "show", "nope")
    assert result.exit_code == 2
    assert result.stderr == ("grader: unknown rubric 'nope'; " + BUNDLED + "\n")


def test_rubrics_schema() -> None:
    result = run("rubrics", "schema")
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "tasks" in schema["properties"]
    assert set(KINDS) <= set(schema["$defs"]["Check"]["properties"])


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"grader, version {__version__}\n"
