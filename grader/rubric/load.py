"""Loading rubrics: YAML -> Rubric, every problem located as ``file:line:col: path: message``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import RubricError, UsageError
from .model import Rubric

Loc = tuple[str | int, ...]


def bundled() -> dict[str, Path]:
    """Bundled rubric id -> file (they ship inside the package)."""
    root = resources.files("grader") / "rubrics"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def resolve(ref: str) -> Path:
    """A rubric file path, or the id of a bundled rubric."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UsageError(f"no rubric file {ref}")
        return path
    known = bundled()
    if ref not in known:
        raise UsageError(f"unknown rubric {ref!r}; bundled rubrics: {', '.join(sorted(known))} (or give a .yaml file)")
    return known[ref]


def load(ref: str | Path) -> Rubric:
    path = resolve(str(ref))
    return parse(path.read_text(encoding="utf-8"), str(path))


def parse(text: str, name: str) -> Rubric:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise RubricError([f"{where}: yaml: {getattr(exc, 'problem', None) or exc}"]) from None
    if node is None:
        raise RubricError([f"{name}:1:1: the file is empty"])
    marks: dict[Loc, tuple[int, int]] = {}
    _index(node, (), marks)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RubricError([f"{name}:1:1: a rubric is a mapping (id, title, version, tasks)"])
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError([_locate(name, err, marks) for err in exc.errors()]) from None


def _index(node: yaml.Node, loc: Loc, marks: dict[Loc, tuple[int, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*loc, key.value)
            marks[sub] = (key.start_mark.line + 1, key.start_mark.column + 1)
            _index(value, sub, marks)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*loc, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _index(item, (*loc, i), marks)
    marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))


MESSAGES = {"extra_forbidden": "unknown field", "missing": "field required"}


def _locate(name: str, err: Any, marks: dict[Loc, tuple[int, int]]) -> str:
    # pydantic adds a step for the function of a validator; drop steps that are not in the YAML.
    loc: Loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    probe = loc
    while probe not in marks and probe:
        probe = probe[:-1]
    line, col = marks.get(probe, (1, 1))
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"
    message = MESSAGES.get(err["type"], err["msg"].removeprefix("Value error, "))
    return f"{name}:{line}:{col}: {path}: {message}"
