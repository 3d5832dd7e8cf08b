"""Submission bundles: what a student hands in from ``grader check --submit FILE``, and what
``grader import`` stores for the instructor.

A bundle is one JSON file (gzip-compressed when its name ends in ``.gz``): a format marker and
version, the student's name, the rubric (id, version, digest) it was checked with, the sealed
Snapshot of the student's daemon, the student's own outcome (informational only) and a sha256
of all of it. Import verifies the file and the snapshot's own digest, then scores the snapshot
again with the instructor's rubric: the bundle's scores are never trusted.

The digests catch corrupt, truncated and hand-edited files; they are not a signature (the
student runs the grader and could seal evidence of their own making)."""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import __version__
from .errors import BundleError, UsageError
from .evaluate import evaluate
from .outcome import Outcome
from .rubric import load
from .snapshot import Snapshot, canonical_digest

if TYPE_CHECKING:
    from .grading import Graded

FORMAT = "grader-submission"
VERSION = 1


class BundleRubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")  # an installed rubric's id, never a path
    version: str
    digest: str


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["grader-submission"] = FORMAT
    version: Literal[1] = VERSION
    student: str = Field(min_length=1)
    rubric: BundleRubric
    created_at: str
    grader_version: str
    snapshot: Snapshot
    outcome: Outcome  # what the student's grader said: informational, never imported
    digest: str = ""

    @field_validator("snapshot")
    @classmethod
    def _dated(cls, snapshot: Snapshot) -> Snapshot:
        datetime.fromisoformat(snapshot.taken_at)
        return snapshot

    @property
    def taken_at(self) -> datetime:
        """When the student's daemon was inspected: the attempt's time once imported."""
        taken = datetime.fromisoformat(self.snapshot.taken_at)
        return taken if taken.tzinfo else taken.replace(tzinfo=UTC)

    def content_digest(self) -> str:
        return canonical_digest(self.model_dump(mode="json", exclude={"digest"}))


def write(graded: Graded, path: Path) -> Bundle:
    """Write ``graded`` (a whole-lab check) as a bundle to ``path``."""
    rubric = graded.rubric
    bundle = Bundle(
        student=graded.student,
        rubric=BundleRubric(id=rubric.id, version=rubric.version, digest=rubric.digest),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        grader_version=__version__,
        snapshot=graded.snapshot,
        outcome=graded.outcome,
    )
    bundle = bundle.model_copy(update={"digest": bundle.content_digest()})
    text = bundle.model_dump_json(indent=1).encode()
    path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)
    return bundle


def read(path: Path) -> Bundle:
    """The verified bundle in ``path``; a BundleError naming the file says what is wrong with it."""

    def bad(problem: str) -> BundleError:
        return BundleError(f"{path}: {problem}")

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror}") from None
    try:
        body = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    except (OSError, EOFError, zlib.error, ValueError):
        raise bad("not a submission bundle (not JSON, or truncated)") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise bad(f"not a submission bundle (no {FORMAT!r} marker)")
    if body.get("version") != VERSION:
        raise bad(f"bundle format version {body.get('version')!r}; this grader reads version {VERSION}")
    try:
        bundle = Bundle.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise bad(f"invalid bundle: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if not bundle.snapshot.verify():
        raise bad("the snapshot does not match its digest (the evidence was edited or damaged)")
    if bundle.digest != bundle.content_digest():
        raise bad("the bundle does not match its digest (edited or damaged)")
    return bundle


@dataclass
class Imported:
    imported: list[str] = field(default_factory=list)  # one line per stored attempt
    skipped: list[str] = field(default_factory=list)  # bundles already in the store
    failed: list[str] = field(default_factory=list)  # one error line per bad file


def import_bundles(files: list[Path], *, rubric_ref: str | None = None, db_url: str | None = None) -> Imported:
    """Verify each bundle and store its snapshot as an attempt (source ``import``), scored again
    with ``rubric_ref`` (default: the installed rubric of the bundle's rubric id). A bundle whose
    snapshot the student already has an attempt with is skipped, so importing twice is harmless.
    A bad file changes nothing and the others go on."""
    from .store import AlreadyStored, Store

    given = load(rubric_ref) if rubric_ref else None
    installed = cache(load)
    store = Store(db_url)
    done = Imported()
    for path in files:
        try:
            bundle = read(path)
            rubric = given or installed(bundle.rubric.id)
        except (BundleError, UsageError) as exc:
            done.failed.append(str(exc) if isinstance(exc, BundleError) else f"{path}: {exc}")
            continue
        student, snapshot = bundle.student, bundle.snapshot
        if rubric.id != bundle.rubric.id:
            done.failed.append(f"{path}: a bundle of rubric {bundle.rubric.id!r}, not {rubric.id!r}")
            continue
        outcome = evaluate(rubric, snapshot)
        try:
            store.record(student, rubric, snapshot, outcome, "import", bundle.taken_at, once=True)
        except AlreadyStored:
            done.skipped.append(f"{path}: already imported ({student}, snapshot {snapshot.digest[:12]})")
            continue
        done.imported.append(f"{path}: {student} {outcome.score:g}/{outcome.max_score:g}")
    return done
