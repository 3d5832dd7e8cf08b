"""The check-kind registry. Built-in kinds register exactly as a plugin's would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..probe.spec import ProbeSpec
from ..snapshot import Snapshot


class Params(BaseModel):
    """A check kind's parameters. A kind that asks the daemon something declares its probes
    here, once: the planner runs them and the evaluator reads their results by these objects."""

    model_config = ConfigDict(extra="forbid")

    def probes(self) -> list[ProbeSpec]:
        return []


def added(default: Any, description: str, alias: str | None = None) -> Any:
    """A parameter added to a kind after rubrics were written with it: left out of the rubric's
    digest while it has its default, so a rubric that does not use it keeps the digest it had
    (the digest names the rubric in the store and in students' bundles). ``alias``: its name in
    a rubric when that is a Python keyword (``from``)."""
    return Field(default, description=description, alias=alias, exclude_if=lambda value: value == default)


@dataclass
class Verdict:
    """What an evaluator concludes. ``fraction`` is the share of the points earned."""

    passed: bool
    expected: Any = None
    actual: Any = None
    message: str = ""
    hint: str = ""  # computed from the difference (an i18n.Text to be translatable); the rubric's follows
    fraction: float | None = None
    error: bool = False  # the fact could not be read: an ``error`` result, the run goes on
    evidence: list[str] = field(default_factory=list)


Evaluator = Callable[[Any, Snapshot], Verdict]


@dataclass
class Kind:
    name: str
    params: type[Params]
    evaluate: Evaluator
    doc: str
    added: bool = False


KINDS: dict[str, Kind] = {}


def check_kind(name: str, params: type[Params], *, added: bool = False) -> Callable[[Evaluator], Evaluator]:
    """Register ``evaluate(params, snapshot) -> Verdict`` as the check kind ``name``; its probes
    are ``params.probes()``. A kind ``added`` after rubrics were stored is left out of the
    rubric's digest where a check does not name it, as ``added`` parameters are."""

    def register(evaluate: Evaluator) -> Evaluator:
        if name in KINDS:
            raise ValueError(f"check kind {name!r} registered twice")
        KINDS[name] = Kind(name, params, evaluate, (evaluate.__doc__ or "").strip(), added)
        return evaluate

    return register
