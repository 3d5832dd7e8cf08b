"""Rubric models: strict pydantic, one optional key per check kind (the kind's name is the
key that holds its parameters, so an error reads ``checks[0].network.nmae``)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ..checks import KINDS, Kind
from ..facts import text_or
from ..i18n import LANGS
from ..probe.spec import ProbeSpec


class Localized(BaseModel):
    """A text a student reads, in each of their languages (``grader.i18n.LANGS``)."""

    model_config = ConfigDict(extra="forbid")

    en: str = Field(description="English")
    id: str = Field("", description="Bahasa Indonesia")

    def get(self, lang: str) -> str:
        """The text in ``lang``, else in English."""
        return (getattr(self, lang, "") if lang in LANGS else "") or self.en


class Hint(Localized):
    en: str = Field("", description="English")


class Titled(BaseModel):
    """A title that is one text, or one per language (``{en: ..., id: ...}``). Kept as given,
    so that a rubric of plain titles has the digest it always had."""

    title: str | Localized

    def title_in(self, lang: str = "en") -> str:
        return self.title if isinstance(self.title, str) else self.title.get(lang)


class CheckBase(Titled):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=100, description="unique in the rubric")
    # Finite and bounded: a score is a sum of points, and two checks of 1e308 sum to infinity.
    # Strict: `points: true` or `points: '5'` is a mistake, not 1 or 5.
    points: float = Field(1, gt=0, le=1000, allow_inf_nan=False, strict=True)
    needs: list[str] = Field(default_factory=list, description="ids of checks that must pass first")
    hint: Hint = Field(default_factory=Hint)
    when: Literal["final", "checkpoint"] = Field(
        "final",
        description="final: describes the end state; checkpoint: may be proved at any time during the lab",
    )

    @cached_property
    def kind(self) -> str:
        return next(name for name in KINDS if getattr(self, name, None) is not None)

    @property
    def params(self) -> BaseModel:
        return getattr(self, self.kind)

    def probes(self) -> list[ProbeSpec]:
        return self.params.probes()


def _one_kind(self: CheckBase) -> CheckBase:
    given = [name for name in KINDS if getattr(self, name, None) is not None]
    if len(given) != 1:
        raise ValueError(
            f"a check needs exactly one kind key of: {', '.join(KINDS)} (got {', '.join(given) or 'none'})"
        )
    return self


def _kind_field(kind: Kind) -> Any:
    if kind.added:  # dumped only where given: rubrics that do not use it keep their digest
        return Field(None, description=kind.doc, exclude_if=lambda params: params is None)
    return Field(None, description=kind.doc)


Check = create_model(  # type: ignore[call-overload]
    "Check",
    __base__=CheckBase,
    __validators__={
        "one_kind": model_validator(mode="after")(_one_kind),
    },
    **{name: (kind.params | None, _kind_field(kind)) for name, kind in KINDS.items()},
)


class Task(Titled):
    model_config = ConfigDict(extra="forbid")

    checks: list[Check] = Field(min_length=1)  # type: ignore[valid-type]


# A command line with no quote and no backslash: shlex's words are its runs of anything but
# shlex's whitespace. Most of a lab's commands are such: split at once, where shlex, a character
# at a time, cost every rubric load 7 ms (20 ms at load) over lab 2's 110 commands.
_PLAIN = re.compile(r"[^'\"\\]*")
_WORD = re.compile(r"[^ \t\r\n]+")


def _words(command: str) -> list[str]:
    """``shlex.split(command)``, at once for a plain command line."""
    return _WORD.findall(command) if _PLAIN.fullmatch(command) else shlex.split(command)


def _lab_command(command: str) -> str:
    try:
        argv = _words(command)
    except ValueError as exc:
        raise ValueError(f"not a command line: {exc}") from None
    if len(argv) >= 2 and argv[0] == "docker":
        return command
    if len(argv) == 2 and argv[0] == "curl" and http_port(argv[1]) is not None:
        return command
    raise ValueError("a case's commands are docker CLI commands, or `curl docker:PORT` (a published port)")


def http_port(url: str) -> int | None:
    """The port of ``docker:PORT`` or ``localhost:PORT`` (as the labs reach a published port)."""
    found = re.fullmatch(r"(?:http://)?(?:docker|localhost|127\.0\.0\.1):(\d{1,5})/?", url)
    return int(found.group(1)) if found and 0 < int(found.group(1)) < 65536 else None


LabCommand = Annotated[str, AfterValidator(_lab_command)]


class LabFile(BaseModel):
    """A file the student writes before the commands that read it (a compose file): written
    in the case's own empty folder, where its commands run."""

    model_config = ConfigDict(extra="forbid")

    write: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100, description="its name in the folder, e.g. compose.yaml"
    )
    text: str = Field(description="what it holds")


LabStep = text_or(LabFile, LabCommand)


class Mistake(BaseModel):
    """A typical mistake of the lab, for ``grader rubric test``: played on a clean daemon, it
    must fail exactly the checks in ``fails`` (blocked ones too), every other check passing."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="what the student did, e.g. a typo in the network name")
    commands: list[LabStep] = Field(
        min_length=1, description="the commands, as the student typed them, and the files they wrote ({write, text})"
    )
    fails: list[str] = Field(min_length=1, description="ids of the checks that must not pass")


class Rubric(Titled):
    model_config = ConfigDict(extra="forbid")

    # As long as every store keeps (the rubric id column has 100 characters, a scaled-out batch's
    # default name is the id and 13 more in 100, the version column 50). A YAML number or boolean
    # is refused, not made a string: `version: 1.10` would be "1.1", `version: yes` "True".
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    version: str = Field(min_length=1, max_length=50)
    description: str = ""
    mode: Literal["final", "progress"] = Field(
        "final",
        description="final: the latest attempt counts; progress: a checkpoint proved once keeps its credit",
    )
    tasks: list[Task] = Field(min_length=1)
    reference: list[LabStep] = Field(
        default_factory=list,
        description="the lab's commands and files ({write, text}), for grader rubric test: they must get full marks",
    )
    mistakes: list[Mistake] = Field(default_factory=list, description="typical mistakes, for grader rubric test")

    @model_validator(mode="after")
    def _ids_and_needs(self) -> Rubric:
        # Raised as a ValidationError with each problem's own location, so the loader can
        # point at the offending id or `needs` entry rather than at the top of the file.
        problems: list[InitErrorDetails] = []
        seen: set[str] = set()
        for t, task in enumerate(self.tasks):
            for c, check in enumerate(task.checks):
                at = ("tasks", t, "checks", c)
                if check.id in seen:
                    message = f"check id {check.id!r} is used twice"
                    problems.append(_problem((*at, "id"), message, check.id))
                for n, need in enumerate(check.needs):
                    if need not in seen:
                        message = f"check {check.id!r} needs {need!r}, "
                        message += "which is not a check defined before it"
                        problems.append(_problem((*at, "needs", n), message, need))
                seen.add(check.id)
        for m, mistake in enumerate(self.mistakes):
            for f, check_id in enumerate(mistake.fails):
                if check_id not in seen:
                    message = f"mistake {mistake.name!r} fails {check_id!r}, which is no check of this rubric"
                    problems.append(_problem(("mistakes", m, "fails", f), message, check_id))
        if problems:
            raise ValidationError.from_exception_data("Rubric", problems)
        return self

    @cached_property
    def numbers(self) -> list[int]:
        """Each task's number: the one its title starts with ("9. Disconnect" is lab step 9,
        after a step 8 with nothing to check) when every title has one and they rise, else
        its position (1-based). ``--task N`` and the results use these."""
        given = [re.match(r"\s*(\d+)[.):]\s", task.title_in()) for task in self.tasks]
        if all(given):
            numbers = [int(m.group(1)) for m in given if m]
            if all(a < b for a, b in zip(numbers, numbers[1:], strict=False)):
                return numbers
        return list(range(1, len(self.tasks) + 1))

    def task(self, number: int) -> Task | None:
        """The task of that number (see ``numbers``)."""
        return dict(zip(self.numbers, self.tasks, strict=True)).get(number)

    def checks(self) -> list[tuple[int, CheckBase]]:
        """(task number, check), in rubric order."""
        return [(n, c) for n, task in zip(self.numbers, self.tasks, strict=True) for c in task.checks]

    def probes(self, task: int | None = None) -> list[ProbeSpec]:
        return [spec for n, c in self.checks() if task in (None, n) for spec in c.probes()]

    @cached_property
    def digest(self) -> str:
        """sha256 of what grades: the self-test's cases are left out (they change no result)."""
        body = self.model_dump(mode="json", exclude={"reference", "mistakes"})
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _problem(loc: tuple[str | int, ...], message: str, value: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("rubric", message), loc=loc, input=value)


def json_schema() -> dict[str, Any]:
    schema = Rubric.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "grader rubric"
    return schema
