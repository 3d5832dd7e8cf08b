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
# libyaml's parser when PyYAML was built with it (ten times faster); the same marks and errors.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        # Tags such as `!!python/object` or `!!int abc` compose but fail to construct.
        data = loader.construct_document(node) if node is not None else None
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise RubricError([f"{where}: yaml: {getattr(exc, 'problem', None) or exc}"]) from None
    finally:
        loader.dispose()
    if node is None:
        raise RubricError([f"{name}:1:1: the file is empty"])
    marks: dict[Loc, tuple[int, int]] = {}
    duplicates: list[str] = []
    _index(node, (), marks, duplicates)
    if duplicates:
        # YAML keeps the last of two equal keys silently; a rubric must not lose a check's part.
        raise RubricError([f"{name}:{problem}" for problem in duplicates])
    if not isinstance(data, dict):
        raise RubricError([f"{name}:1:1: a rubric is a mapping (id, title, version, tasks)"])
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError([_locate(name, err, marks) for err in exc.errors()]) from None


def _index(node: yaml.Node, loc: Loc, marks: dict[Loc, tuple[int, int]], duplicates: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*loc, key.value)
            line, col = key.start_mark.line + 1, key.start_mark.column + 1
            if sub in marks:  # only an earlier key of this same mapping can have set it
                first = f"first on line {marks[sub][0]}"
                duplicates.append(f"{line}:{col}: {_path(sub)}: duplicate key ({first})")
                continue
            marks[sub] = (line, col)
            _index(value, sub, marks, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            marks[(*loc, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _index(item, (*loc, i), marks, duplicates)
    marks.setdefault(loc, (node.start_mark.line + 1, node.start_mark.column + 1))


MESSAGES = {"extra_forbidden": "unknown field", "missing": "field required"}


def _locate(name: str, err: Any, marks: dict[Loc, tuple[int, int]]) -> str:
    # pydantic adds a step for the function of a validator; drop steps that are not in the YAML.
    loc: Loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-")))
    probe = loc
    while probe not in marks and probe:
        probe = probe[:-1]
    line, col = marks.get(probe, (1, 1))
    message = MESSAGES.get(err["type"], err["msg"].removeprefix("Value error, "))
    return f"{name}:{line}:{col}: {_path(loc)}: {message}"


def _path(loc: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"
