"""Docs that are checked: every check kind and every command is documented, and the
generated reference in docs/ matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import docs
from grader.checks import KINDS

COMMANDS = {ctx.command_path: command.get_help(ctx) for command, ctx in docs.cli_commands()}


@pytest.mark.parametrize("name", list(KINDS))
def test_check_kind_is_documented(name: str) -> None:
    assert KINDS[name].doc.strip(), f"check kind {name} has no docstring"
    assert f"\n## `{name}`\n\n" in (docs.DOCS / "checks.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted(docs.generated()), ids=lambda p: p.name)
def test_generated_docs_are_up_to_date(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == docs.generated()[path], "run: python -m grader.docs"


def test_check_flag_passes_when_up_to_date() -> None:
    result = CliRunner().invoke(docs.main, ["--check"])
    assert result.exit_code == 0, result.stderr


def test_check_flag_fails_when_stale(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(docs.main, ["--docs", str(tmp_path)]).exit_code == 0
    (tmp_path / "cli.md").write_text("stale\n", encoding="utf-8")
    result = runner.invoke(docs.main, ["--check", "--docs", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"{tmp_path / 'cli.md'}: out of date; run python -m grader.docs\n"


def test_the_cli_walk_finds_every_command() -> None:
    assert {
        "grader",
        "grader grade",
        "grader check",
        "grader rubrics",
        "grader rubrics list",
    } <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_command_help_has_an_example(path: str) -> None:
    assert "Example:" in COMMANDS[path], f"{path} --help has no 'Example:'"


def test_every_export_format_is_a_choice_and_documented() -> None:
    """One table (export.FORMATS) makes the --format choice, the dispatch and the docs."""
    from grader.export import FORMATS

    help_text = COMMANDS["grader export"]
    assert f"[{'|'.join(FORMATS)}]" in help_text
    table = (docs.DOCS / "cli.md").read_text(encoding="utf-8").split("## Export formats\n", 1)[1]
    for form in FORMATS.values():
        assert f"| `{form.name}` | {form.about} |" in table
