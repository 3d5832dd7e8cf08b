"""What the package's imports may do (STYLE.md 19): no import cycle inside ``grader/``, and code
that reads results (exports, reports) never loads the daemon's side: docker, rich, the probe
runner. Each command's dependencies are imported inside the command, so ``--help`` is quick."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.evaluate import evaluate
from grader.export import FORMATS
from grader.rubric import load
from grader.snapshot import Snapshot
from grader.store import Store

PACKAGE = Path(__file__).resolve().parent.parent / "grader"
GOLDEN = Path(__file__).parent / "golden"
# What only grading a daemon needs: the Docker SDK, the terminal's renderer, the probe runner.
DAEMON_SIDE = ("docker", "requests", "rich", "grader.collect", "grader.probe.runner", "grader.probe.script")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_that_run(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``grader`` that ``path`` imports when it is imported: its module-level
    imports, outside ``if TYPE_CHECKING:`` (imports inside a function run later, on a call)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                    visit(block)
            elif isinstance(node, ast.With):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)  # ``from . import store``

    visit(ast.parse(path.read_text(), str(path)).body)
    # A module imports its parent packages too; only modules of grader count.
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_that_run(path, set(paths)) for name, path in paths.items()}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as the list of its modules (the first one again at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once every arrow out was seen
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (found := walk(target)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_no_import_cycle_inside_grader() -> None:
    graph = import_graph()
    assert "grader.store" in graph["grader.report"]  # the parser sees the arrows
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def loaded_by(args: list[str], db: str = "") -> set[str]:
    """The modules a ``grader`` command loaded, run in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from grader.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        "    print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "GRADER_DB": db}
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.splitlines()[-1]))


def daemon_side(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.startswith(DAEMON_SIDE))


@pytest.fixture
def stored(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'class.db'}"
    store = Store(url)
    for case in ("networks-typo", "networks-reference"):
        rubric, snapshot = load("docker-networks"), Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())
        store.record(case, rubric, snapshot, evaluate(rubric, snapshot), "grade")
    return url


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_never_loads_docker_rich_or_the_probe_runner(stored: str, fmt: str, tmp_path: Path) -> None:
    needs = []
    if FORMATS[fmt].one_student:
        needs = ["--student", "networks-typo"]
    if FORMATS[fmt].identifiers:
        roster = tmp_path / "class.csv"
        roster.write_text("student,email,sis_id\nnetworks-typo,t@x,1\nnetworks-reference,r@x,2\n")
        needs = ["--roster", str(roster)]
    args = ["export", "--format", fmt, *needs, "--lang", "id", "--out", str(tmp_path / "out")]
    assert daemon_side(loaded_by(args, stored)) == []
    assert (tmp_path / "out").stat().st_size > 0


def test_report_never_loads_docker_rich_or_the_probe_runner(stored: str, tmp_path: Path) -> None:
    assert daemon_side(loaded_by(["report", "--out", str(tmp_path / "site")], stored)) == []
    assert (tmp_path / "site" / "index.html").is_file()


def test_help_loads_click_and_the_command_line_only() -> None:
    """``grader --help`` imports no command's dependencies (each command imports its own), nor
    the installed metadata (the version): its time is the interpreter's and click's."""
    loaded = loaded_by(["--help"])
    heavy = ("pydantic", "yaml", "rich", "docker", "requests", "sqlalchemy", "alembic", "jinja2", "babel")
    assert sorted(name for name in loaded if name.startswith(heavy)) == []
    assert "importlib.metadata" not in loaded


def test_grading_loads_paramiko_only_when_it_is_read(tmp_path: Path) -> None:
    """The docker SDK imports paramiko (the "ssh" extra) whenever it is installed; the grader
    reaches ssh:// daemons through the system's ssh, so paramiko's code loads only if read."""
    pytest.importorskip("paramiko")
    socket = f"unix://{tmp_path}/none.sock"  # no daemon: the SDK is loaded, the grade fails (exit 3)
    loaded = loaded_by(["grade", "--rubric", "docker-networks", "--student", "a", "--docker-host", socket])
    assert "docker.transport.sshconn" in loaded  # the SDK's ssh:// support is there
    assert sorted(name for name in loaded if name.startswith(("paramiko.", "invoke", "nacl"))) == []
    code = "import grader, docker, paramiko\nprint(paramiko.SSHClient.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "paramiko.client\n"
