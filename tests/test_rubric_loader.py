"""The rubric loader: every problem is reported as ``file:line:col: path: message``, exactly."""

from __future__ import annotations

import json
import os
import random
import resource
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader import __version__
from grader.checks import KINDS
from grader.checks.regex import LineRegex, Regex
from grader.cli import main
from grader.errors import RubricError, UsageError
from grader.rubric import bundled, load, parse, resolve
from grader.rubric.model import _words

HEAD = "id: lab\ntitle: Lab\nversion: '1'\ntasks:\n  - title: one\n    checks:\n"
# Lines 1-6 are HEAD; the first check starts on line 7 (`      - id: net`, the id key at column 9).
GOOD = HEAD + "      - id: net\n        title: the network exists\n        network: {name: backend}\n"
KIND_KEYS = ", ".join(KINDS)
IDS = ["docker-compose", "docker-host-ports", "docker-links", "docker-networks", "docker-round-robin"]
BUNDLED = f"bundled rubrics: {', '.join(IDS)} (or give a .yaml file)"
# "Billion laughs": each of nine levels is nine aliases of the one before, 9**9 nodes expanded.
LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{level}: &{level} [{', '.join([f'*{below}'] * 9)}]\n" for below, level in pairwise("abcdefghi")
)


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
    assert problems(text) == ["x.yaml:9:9: tasks[0].checks[0].points: a number, not the string 'lots'"]


QUOTE_NUMBER = "put it in quotes (YAML reads 1.10 as the number 1.1)"
QUOTE_BOOLEAN = "put it in quotes (YAML reads yes, no, on, off as booleans)"


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        # Before: stored as "1.1", "True" and "1".
        ("1.10", f"a string, not the number 1.1: {QUOTE_NUMBER}"),
        ("yes", f"a string, not the boolean true: {QUOTE_BOOLEAN}"),
        ("1", f"a string, not the number 1: {QUOTE_NUMBER}"),
        # Before: valid, and refused only by PostgreSQL (the version column has 50 characters).
        ("'" + "v" * 51 + "'", "String should have at most 50 characters"),
        ("''", "String should have at least 1 character"),
    ],
)
def test_version_is_a_string_as_written(version: str, problem: str) -> None:
    assert problems(GOOD.replace("version: '1'", f"version: {version}")) == [f"x.yaml:3:1: version: {problem}"]


def test_version_in_quotes_is_kept_as_written() -> None:
    assert parse(GOOD.replace("version: '1'", "version: '1.10'"), "x.yaml").version == "1.10"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("id: 2024", f"id: a string, not the number 2024: {QUOTE_NUMBER}"),
        ("id: no", f"id: a string, not the boolean false: {QUOTE_BOOLEAN}"),
        # The store's rubric column has 100 characters, a batch's default name adds 13 in 100.
        ("id: " + "l" * 65, "id: String should have at most 64 characters"),
    ],
)
def test_rubric_id_is_a_short_string(line: str, problem: str) -> None:
    assert problems(GOOD.replace("id: lab", line, 1)) == [f"x.yaml:1:1: {problem}"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("id: 7", f"id: a string, not the number 7: {QUOTE_NUMBER}"),
        ("id: on", f"id: a string, not the boolean true: {QUOTE_BOOLEAN}"),
        ("id: " + "c" * 101, "id: String should have at most 100 characters"),
    ],
)
def test_check_id_is_a_short_string(line: str, problem: str) -> None:
    assert problems(GOOD.replace("- id: net", f"- {line}")) == [f"x.yaml:7:9: tasks[0].checks[0].{problem}"]


@pytest.mark.parametrize(
    ("points", "problem"),
    [("true", "the boolean true"), ("'5'", "the string '5'"), ("[1]", None)],
)
def test_points_is_a_number_not_a_boolean_or_a_string(points: str, problem: str | None) -> None:
    # Before: `points: true` was 1 point and `points: '5'` 5.
    text = HEAD + f"      - id: net\n        title: t\n        points: {points}\n        network: {{name: n}}\n"
    message = f"a number, not {problem}" if problem else "Input should be a valid number"
    assert problems(text) == [f"x.yaml:9:9: tasks[0].checks[0].points: {message}"]


def test_points_may_be_a_whole_number_or_not() -> None:
    text = HEAD + "      - id: net\n        title: t\n        points: 2\n        network: {name: n}\n"
    text += "      - id: net2\n        title: t\n        points: 0.5\n        network: {name: n}\n"
    assert [c.points for _, c in parse(text, "x.yaml").checks()] == [2, 0.5]


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
    [problem] = problems("id: lab\ntitle: [unclosed\nversion: '1'\n")
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
    text = "id: Lab\ntitle: L\nversion: '1'\ntasks: []\n"
    assert problems(text) == [
        "x.yaml:1:1: id: String should match pattern '^[a-z0-9][a-z0-9_-]*$'",
        "x.yaml:4:1: tasks: List should have at least 1 item after validation, not 0",
    ]


@pytest.mark.parametrize("rubric_id", IDS)
def test_bundled_rubrics_load(rubric_id: str) -> None:
    rubric = load(rubric_id)
    assert rubric.id == rubric_id
    assert rubric.checks()


def test_bundled_ids() -> None:
    assert sorted(bundled()) == IDS


def test_resolve_unknown_id_names_the_bundled_ones() -> None:
    with pytest.raises(UsageError) as caught:
        resolve("docker-linkz")
    assert str(caught.value) == ("unknown rubric 'docker-linkz'; " + BUNDLED)
    assert caught.value.exit_code == 2


def test_resolve_missing_file() -> None:
    with pytest.raises(UsageError, match=r"^no rubric file nowhere\.yaml$"):
        resolve("nowhere.yaml")


def test_resolve_a_symbolic_link_loop_says_so(tmp_path: Path) -> None:
    # Before: "no rubric file ...", as if it were not there.
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    result = run("rubrics", "show", str(loop))
    assert (result.exit_code, result.stderr) == (
        2,
        f"grader: cannot read the rubric file {loop}: Too many levels of symbolic links\n",
    )


def test_resolve_an_empty_name() -> None:
    # Before: ".: not a regular file" (the empty path is the current folder).
    result = run("rubrics", "show", "")
    assert (result.exit_code, result.stderr) == (
        2,
        "grader: no rubric given: name a bundled rubric's id or a .yaml file\n",
    )


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("title: Lab\n", ""), encoding="utf-8")
    with pytest.raises(RubricError) as caught:
        load(path)
    assert caught.value.problems == [f"{path}:1:1: title: field required"]


# --- untrusted rubrics: bounded work, one located line each -------------------------------


def test_alias_bomb_is_refused_at_the_alias_that_crosses_the_bound() -> None:
    # a..d expand to 8,307 nodes with their keys; e's first *d (line 5, column 8) adds 7,381.
    assert problems(LAUGHS) == ["x.yaml:5:8: yaml: more than 10000 nodes once *d is expanded"]


def test_merge_key_bomb_is_refused() -> None:
    # The constructor copies a merged mapping's pairs: nine merges nine levels deep are 9**9 pairs.
    text = "m0: &m0 {x: 1}\n" + "".join(
        f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * 9)}]}}\n" for n in range(1, 10)
    )
    assert problems(text) == ["x.yaml:5:25: yaml: more than 10000 nodes once *m3 is expanded"]


def test_alias_inside_its_own_anchor() -> None:
    assert problems("a: &a [1, *a]\n") == ["x.yaml:1:11: yaml: *a is inside its own anchor, so it never ends"]


def test_too_many_nodes_without_aliases() -> None:
    # The mapping, the key and the list are three nodes: item 9,998 is the 10,001st, at column 4 + 3 * 9,997.
    assert problems("a: [" + ", ".join(["x"] * 10_001) + "]\n") == ["x.yaml:1:29996: yaml: more than 10000 nodes"]


def test_deep_nesting_is_refused_before_libyaml_composes_it() -> None:
    # 30,000 levels crash libyaml's composer (it recurses in C); level 50 is the `[` at column 52.
    assert problems("a: " + "[" * 100_000 + "]" * 100_000 + "\n") == ["x.yaml:1:52: yaml: more than 50 levels deep"]


def test_deep_nesting_through_an_alias() -> None:
    # *a is 41 levels high (its 40 lists and their contents); under 21 levels it reaches 62.
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 20 + "*a" + "]" * 20 + "\n"
    assert problems(text) == ["x.yaml:2:24: yaml: more than 50 levels deep once *a is expanded"]


def test_long_value_is_refused() -> None:
    # A plain 1:1:1:... is a base-60 integer to YAML 1.1, built in quadratic time (1 MB: 43 s).
    assert problems("id: lab\ntitle: 1" + ":1" * 499_000 + "\n") == [
        "x.yaml:2:8: yaml: a value longer than 10000 characters",
    ]


def test_anchors_aliases_and_merge_keys_within_the_bounds_load() -> None:
    text = (
        HEAD
        + "      - id: net\n        title: t\n        hint: &hint {en: create it}\n"
        + "        network: &net {name: backend}\n"
        + "      - id: net2\n        title: t\n        hint: *hint\n"
        + "        network: {<<: *net, driver: bridge}\n"
    )
    first, second = (c for _, c in parse(text, "x.yaml").checks())
    assert (first.hint.en, second.hint.en) == ("create it", "create it")
    assert (second.params.name, second.params.driver) == ("backend", "bridge")


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (".inf", "Input should be a finite number"),
        ("-.inf", "Input should be a finite number"),
        (".nan", "Input should be a finite number"),
        ("-1", "Input should be greater than 0"),
        ("1.0e+308", "Input should be less than or equal to 1000"),
        ("1e308", "a number, not the string '1e308'"),  # YAML 1.1: a float has a dot
    ],
)
def test_points_are_finite_and_positive(points: str, message: str) -> None:
    text = HEAD + f"      - id: net\n        title: t\n        points: {points}\n        network: {{name: n}}\n"
    assert problems(text) == [f"x.yaml:9:9: tasks[0].checks[0].points: {message}"]


RE2 = "not a valid regular expression (RE2 syntax: no backreference, no lookaround)"


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (
            "http: {host: web, pattern: 'Total (\\d+'}",
            f"9:27: tasks[0].checks[0].http.pattern: {RE2}: missing ): Total (\\d+",
        ),
        ("ran: {image: alpine, command: '[a-'}", f"9:30: tasks[0].checks[0].ran.command: {RE2}: missing ]: [a-"),
        (
            "command: {container: redis, argv: [cat], expect: '*keys'}",
            f"9:50: tasks[0].checks[0].command.expect: {RE2}: no argument for repetition operator: *",
        ),
        # What only a backtracking engine runs: refused at load, where Python's re took them.
        (
            "ran: {image: alpine, command: '(a)\\1'}",
            f"9:30: tasks[0].checks[0].ran.command: {RE2}: invalid escape sequence: \\1",
        ),
        (
            "http: {host: web, pattern: 'a(?=b)'}",
            f"9:27: tasks[0].checks[0].http.pattern: {RE2}: invalid perl operator: (?=",
        ),
        (
            "command: {container: redis, argv: [cat], expect: '(?<!x)keys'}",
            f"9:50: tasks[0].checks[0].command.expect: {RE2}: invalid perl operator: (?<!",
        ),
    ],
)
def test_bad_regular_expression_is_refused_at_load(params: str, problem: str) -> None:
    assert problems(HEAD + f"      - id: c\n        title: t\n        {params}\n") == [f"x.yaml:{problem}"]


def test_every_regular_expression_parameter_is_compiled_at_load_by_re2() -> None:
    compiled = {*Regex.__metadata__, *LineRegex.__metadata__}
    described, typed = set(), set()
    for kind, spec in KINDS.items():
        for field, info in spec.params.model_fields.items():
            if "regular expression" in (info.description or ""):
                described.add((kind, field))
            if compiled & set(info.metadata):
                typed.add((kind, field))
    assert described == typed == {("http", "pattern"), ("ran", "command"), ("command", "expect")}


def test_control_character_is_located() -> None:
    assert problems("id: lab\ntitle: a\x1bb\n") == [
        "x.yaml:2:9: yaml: character U+001B is not allowed (a binary or UTF-16 file?)",
    ]


def load_problems(path: Path) -> list[str]:
    with pytest.raises(RubricError) as caught:
        load(path)
    return caught.value.problems


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (("# café\n" + GOOD).encode("latin-1"), "1:6: not UTF-8: byte 0xe9 (offset 5); save the rubric as UTF-8"),
        (GOOD.encode("utf-16"), "1:1: UTF-16 text (it starts with a byte order mark); save the rubric as UTF-8"),
        (GOOD.encode("utf-16-be"), "1:1: yaml: character U+0000 is not allowed (a binary or UTF-16 file?)"),
        (GOOD.encode("utf-16-le"), "1:2: yaml: character U+0000 is not allowed (a binary or UTF-16 file?)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "1:1: not UTF-8: byte 0x89 (offset 0); save the rubric as UTF-8"),
        (
            b"\x7fELF\x02\x01\x01\x00" + bytes(8),
            "1:1: yaml: character U+007F is not allowed (a binary or UTF-16 file?)",
        ),
        (b"", "1:1: the file is empty"),
    ],
    ids=["latin-1", "utf-16-bom", "utf-16-be", "utf-16-le", "png", "elf", "empty"],
)
def test_file_that_is_not_utf8_text(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(data)
    assert load_problems(path) == [f"{path}:{problem}"]


def test_file_larger_than_1_mb(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"#" * ((1 << 20) - 1) + b"\n")  # exactly 1 MiB is read whole
    assert load_problems(path) == [f"{path}:1:1: the file is empty"]
    path.write_bytes(b"#" * (1 << 20) + b"\n")
    assert load_problems(path) == [f"{path}: larger than 1048576 bytes; a rubric has a few KB"]


def test_directory_is_not_a_rubric(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.mkdir()
    assert load_problems(path) == [f"{path}: not a regular file"]


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


# In a child process capped at 1 GB of address space and a minute, so that a regression fails
# the test instead of taking the machine's memory, or hanging on a FIFO; the module is imported
# first so that time and memory are the validation's alone.
VALIDATE_IN_CHILD = """
import json, sys, time, tracemalloc
from click.testing import CliRunner
import grader.rubric
from grader.cli import main
tracemalloc.start()
start = time.perf_counter()
result = CliRunner().invoke(main, ["rubrics", "validate", sys.argv[1]])
seconds = time.perf_counter() - start
print(json.dumps([result.exit_code, result.stderr, seconds, tracemalloc.get_traced_memory()[1]]))
"""


def _one_gigabyte_of_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def validate_in_child(path: Path) -> tuple[int, str, float, int]:
    """``grader rubrics validate PATH``: exit code, stderr, seconds, peak bytes allocated."""
    child = subprocess.run(
        [sys.executable, "-c", VALIDATE_IN_CHILD, str(path)],
        preexec_fn=_one_gigabyte_of_address_space,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    exit_code, stderr, seconds, peak = json.loads(child.stdout)
    return exit_code, stderr, seconds, peak


def test_validate_refuses_the_alias_bomb_quickly_in_bounded_memory(tmp_path: Path) -> None:
    # Before the bound: a MemoryError after 12 s at a 2 GB cap (past 6.7 GB without one).
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    exit_code, stderr, seconds, peak = validate_in_child(path)
    assert (exit_code, stderr) == (78, f"{path}:5:8: yaml: more than 10000 nodes once *d is expanded\n")
    assert seconds < 1  # 3 ms
    assert peak < 16 << 20  # 1 MB


def test_validate_refuses_a_fifo_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    os.mkfifo(path)
    exit_code, stderr, _, _ = validate_in_child(path)
    assert (exit_code, stderr) == (78, f"{path}: not a regular file\n")


def test_validate_reports_every_file(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text("")
    result = run("rubrics", "validate", str(good), str(bad))
    assert result.exit_code == 78
    assert result.stdout == f"{good}: ok (lab v1, 1 check)\n"
    assert result.stderr == f"{bad}:1:1: the file is empty\n"


def test_validate_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    result = run("rubrics", "validate", str(path))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"{path}: ok (lab v1, 1 check)\n"


def test_validate_bundled_files() -> None:
    result = run("rubrics", "validate", *(str(p) for p in bundled().values()))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count(": ok (") == 5


def test_rubrics_list() -> None:
    result = run("rubrics", "list")
    assert result.exit_code == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        "docker-compose",
        "docker-host-ports",
        "docker-links",
        "docker-networks",
        "docker-round-robin",
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


def test_a_lab_command_splits_into_the_words_shlex_makes() -> None:
    """A plain command line is split at once, any other by shlex: the words (or the error) are
    shlex's either way, over the bundled labs' commands and random text of what shlex treats
    specially (quotes, backslash, its whitespace and the rest of Unicode's)."""
    commands = [
        step
        for ref in bundled()
        for steps in [load(ref).reference, *(m.commands for m in load(ref).mistakes)]
        for step in steps or []
        if isinstance(step, str)
    ]
    generate = random.Random(20)
    alphabet = "ab- \t\r\n\x0b\x0c\xa0\u2003'\"\\#;|"
    commands += ["".join(generate.choices(alphabet, k=generate.randint(0, 12))) for _ in range(5000)]
    for command in commands:
        try:
            expected: object = shlex.split(command)
        except ValueError as exc:
            expected = str(exc)
        try:
            got: object = _words(command)
        except ValueError as exc:
            got = str(exc)
        assert got == expected, repr(command)
    assert len(commands) > 5100
