"""Loading rubrics: YAML -> Rubric, every problem located as ``file:line:col: path: message``.

A rubric file comes from elsewhere and is untrusted: it is read only when it is a regular file
of at most ``MAX_BYTES`` of UTF-8, and its YAML is measured from the parser's events before it
is composed, so that no document makes loading grow without bound or crash."""

from __future__ import annotations

import codecs
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import RubricError, UsageError
from ..facts import TAG
from ..util import NotRegular, TooLarge, read_capped
from .model import Rubric

Loc = tuple[str | int, ...]
# libyaml's parser when PyYAML was built with it (ten times faster); the same marks and errors.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Bounds for an untrusted file. The bundled rubrics have 7 KB, 440 nodes, 8 levels, and no
# value longer than 160 characters.
MAX_BYTES = 1 << 20
# Nodes once every alias is expanded: nine aliases nine levels deep ("billion laughs") make
# 387 million, which the duplicate-key scan, the constructor's merge keys and pydantic walk.
MAX_NODES = 10_000
# libyaml's composer recurses in C: 30,000 levels crash the process.
MAX_DEPTH = 50
# YAML 1.1 reads a plain 1:2:3:... as a base-60 integer, built in quadratic time (1 MB: 43 s).
MAX_SCALAR = 10_000
# The characters a YAML stream may not hold: the complement of libyaml's and PyYAML's set,
# [\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff], spelled out (a negated
# class spanning all of Unicode takes ten times as long to compile, on every grade). A NUL is
# the first sign of UTF-16 without a byte order mark, or of a binary file.
UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def bundled() -> dict[str, Path]:
    """Bundled rubric id -> file (they ship inside the package)."""
    root = resources.files("grader") / "rubrics"
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def resolve(ref: str) -> Path:
    """A rubric file's path (read() refuses what is not a regular file), or a bundled rubric's id."""
    if not ref:  # Path("") is the current folder
        raise UsageError("no rubric given: name a bundled rubric's id or a .yaml file")
    path = Path(ref)
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        pass  # a bundled rubric's id, or a file that is not there
    except OSError as exc:  # a symbolic link loop, a name too long, a folder not searchable
        raise UsageError(f"cannot read the rubric file {ref}: {exc.strerror}") from None
    else:
        return path
    if path.suffix in (".yaml", ".yml"):
        raise UsageError(f"no rubric file {ref}")
    known = bundled()
    if ref not in known:
        raise UsageError(f"unknown rubric {ref!r}; bundled rubrics: {', '.join(sorted(known))} (or give a .yaml file)")
    return known[ref]


def load(ref: str | Path) -> Rubric:
    path = resolve(str(ref))
    return parse(read(path), str(path))


def read(path: Path) -> str:
    """The text of a rubric file: a regular file of at most MAX_BYTES, in UTF-8."""
    name = str(path)
    try:
        data = read_capped(path, MAX_BYTES)
    except NotRegular:
        raise RubricError([f"{name}: not a regular file"]) from None
    except TooLarge:
        raise RubricError([f"{name}: larger than {MAX_BYTES} bytes; a rubric has a few KB"]) from None
    except OSError as exc:
        raise RubricError([f"{name}: cannot read: {exc.strerror or exc}"]) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise RubricError([f"{name}:1:1: UTF-16 text (it starts with a byte order mark); save the rubric as UTF-8"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        where = _where(name, good, len(good))
        message = f"not UTF-8: byte 0x{data[exc.start]:02x} (offset {exc.start}); save the rubric as UTF-8"
        raise RubricError([f"{where}: {message}"]) from None


def parse(text: str, name: str) -> Rubric:
    bad = UNPRINTABLE.search(text)
    if bad:
        message = f"character U+{ord(bad.group()):04X} is not allowed (a binary or UTF-16 file?)"
        raise RubricError([f"{_where(name, text, bad.start())}: yaml: {message}"])
    try:
        _measure(text, name)
        loader = LOADER(text)
        try:
            node = loader.get_single_node()
            # Tags such as `!!python/object` or `!!int abc` compose but fail to construct.
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _at(name, mark) if mark else name
        raise RubricError([f"{where}: yaml: {getattr(exc, 'problem', None) or exc}"]) from None
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


def _measure(text: str, name: str) -> None:
    """Refuse, from the parser's events, a document too big or too deep once its aliases are
    expanded: the composed nodes share an anchor's node, but everything that walks them (the
    duplicate-key scan, the constructor's merge keys, pydantic) expands every alias again."""
    loader = LOADER(text)
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> nodes and levels of its expansion
    # The collections being read: [anchor, nodes before it, its level, the deepest level in it
    # (one below it from the start: an empty one is counted a level too deep, which is harmless)].
    frames: list[list[Any]] = []
    nodes = 0
    try:
        # Exact types rather than isinstance: this runs for every event of every rubric loaded.
        while (kind := type(event := loader.get_event())) is not yaml.StreamEndEvent:
            if kind is yaml.ScalarEvent:
                nodes += 1
                if len(event.value) > MAX_SCALAR:
                    raise _refused(name, event, f"a value longer than {MAX_SCALAR} characters")
                if event.anchor is not None:
                    anchors[event.anchor] = (1, 1)
            elif kind is yaml.AliasEvent:
                if any(frame[0] == event.anchor for frame in frames):
                    raise _refused(name, event, f"*{event.anchor} is inside its own anchor, so it never ends")
                # An alias to an anchor not defined before it is the composer's error to report.
                size, height = anchors.get(event.anchor, (1, 1))
                nodes += size
                deepest = len(frames) + height
                if deepest > MAX_DEPTH:
                    raise _refused(name, event, f"more than {MAX_DEPTH} levels deep once *{event.anchor} is expanded")
                if frames:
                    frames[-1][3] = max(frames[-1][3], deepest)
            elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                nodes += 1
                level = len(frames) + 1
                if level + 1 > MAX_DEPTH:  # what it holds is a level below it
                    raise _refused(name, event, f"more than {MAX_DEPTH} levels deep")
                frames.append([event.anchor, nodes - 1, level, level + 1])
            elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                anchor, before, level, deepest = frames.pop()
                if anchor is not None:
                    anchors[anchor] = (nodes - before, deepest - level + 1)
                if frames:
                    frames[-1][3] = max(frames[-1][3], deepest)
            if nodes > MAX_NODES:
                expanded = f" once *{event.anchor} is expanded" if kind is yaml.AliasEvent else ""
                raise _refused(name, event, f"more than {MAX_NODES} nodes{expanded}")
    finally:
        loader.dispose()


def _refused(name: str, event: yaml.Event, message: str) -> RubricError:
    return RubricError([f"{_at(name, event.start_mark)}: yaml: {message}"])


def _at(name: str, mark: Any) -> str:
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


def _where(name: str, text: str, index: int) -> str:
    """``name:line:col`` of the character at ``index`` in ``text``."""
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)  # rfind is -1 on the first line
    return f"{name}:{line}:{column}"


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
    # pydantic adds a step for the function of a validator and for the member of a union
    # (facts.text_or); drop steps that are not in the YAML.
    loc: Loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and part.startswith(("function-", TAG))))
    probe = loc
    while probe not in marks and probe:
        probe = probe[:-1]
    line, col = marks.get(probe, (1, 1))
    message = _scalar_type(err) or MESSAGES.get(err["type"], err["msg"].removeprefix("Value error, "))
    return f"{name}:{line}:{col}: {_path(loc)}: {message}"


def _scalar_type(err: Any) -> str | None:
    """What to do when YAML read a plain scalar as another type than the field's."""
    value = err["input"]
    if not isinstance(value, bool | int | float | str):
        return None
    kind = "boolean" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    if err["type"] == "string_type" and kind != "string":
        unquoted = "yes, no, on, off as booleans" if kind == "boolean" else "1.10 as the number 1.1"
        return f"a string, not the {kind} {shown}: put it in quotes (YAML reads {unquoted})"
    if err["type"] == "float_type" and kind != "number":
        return f"a number, not the {kind} {shown}"
    return None


def _path(loc: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top)"
