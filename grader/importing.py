"""Taking students' bundles in: the use case behind ``grader import`` (files) and ``grader
serve`` (one bundle per request). Both go through ``Importer.check`` and ``Importer.keep``:
the same verification (format, digests, shape, size bounds before parsing: ``bundle.parse``;
the seal of the student it is stored under; a claimed time not ahead of ours), the snapshot
scored again with the instructor's rubric (the bundle's own scores are never used), and one
attempt stored, or none when the student already has one with that very snapshot (``keep``
stores many in one transaction: the server's group commit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from . import keys
from .bundle import CLOCK_SKEW, Bundle, parse, read, student_name
from .errors import BundleError, UsageError
from .evaluate import evaluate
from .rubric import load
from .text import SHORT, head

if TYPE_CHECKING:
    from .outcome import Outcome
    from .rubric.model import Rubric
    from .store import Attempt, NewAttempt, Store


class Refused(BundleError):
    """A bundle not taken, in one line. ``forged``: sealed with another key than its
    student's, or not sealed at all (the server answers 403 and logs it)."""

    def __init__(self, message: str, forged: bool = False):
        super().__init__(message)
        self.forged = forged

    def __reduce__(self) -> tuple[type[Refused], tuple[str, bool]]:  # from a checking worker, whole
        return Refused, (str(self), self.forged)


@dataclass(frozen=True)
class Taken:
    """One bundle taken: stored as ``attempt``, or skipped (None) as a snapshot the student
    already has an attempt with."""

    student: str
    outcome: Outcome
    attempt: Attempt | None
    snapshot: str  # its digest

    @property
    def attempt_id(self) -> int | None:
        return self.attempt.id if self.attempt is not None else None


class Checker:
    """Verifies bundles and scores each with the one of ``rubric_refs`` it names (without any:
    the installed rubric of each bundle's rubric id). With the course ``secret``, a bundle must
    be sealed with the key of the student it is stored under and its attempt is "verified";
    without, "unverified". Needs no store: the live class's checking workers are Checkers."""

    def __init__(self, *, rubric_refs: Sequence[str] = (), secret: Path | None = None):
        self.course_secret = keys.secret(secret)[0] if secret else None
        self.identity = "verified" if self.course_secret is not None else "unverified"
        self.rubrics: dict[str, Rubric] = {}
        for ref in rubric_refs:
            rubric = load(ref)
            if rubric.id in self.rubrics:
                raise UsageError(f"--rubric {ref} has the id {rubric.id!r} of another --rubric: give each lab once")
            self.rubrics[rubric.id] = rubric
        self._installed = cache(load)

    def receive(self, data: bytes, sender: str) -> NewAttempt:
        """One bundle's bytes, as a request from ``sender`` carries them, checked (``check``):
        a bundle of another student is refused as forged. ``keep`` stores it."""
        bundle = parse(data)
        if bundle.student != sender:
            raise Refused(f"a bundle of {head(bundle.student, SHORT)}, sent as {head(sender, SHORT)}", forged=True)
        return self.check(bundle)

    def check(self, bundle: Bundle, student: str | None = None) -> NewAttempt:
        """``bundle`` verified for its student (or ``student``) and scored, not stored yet; a
        Refused says why not."""
        from .store import NewAttempt

        rubric = self.rubric(bundle.rubric.id)
        owner, snapshot = student or bundle.student, bundle.snapshot
        if self.course_secret is not None:
            if bundle.seal is None:
                raise Refused("not sealed with a student key (made without --key): cannot be verified", forged=True)
            if not keys.sealed_by(self.course_secret, owner, bundle.digest, bundle.seal):
                raise Refused(f"not sealed with {owner}'s key (another student's key, or an edited name)", forged=True)
        now = datetime.now(UTC)
        if bundle.taken_at > now + CLOCK_SKEW:
            raise Refused(f"claims its daemon was inspected at {bundle.snapshot.taken_at}, after this import")
        return NewAttempt.of(owner, rubric, snapshot, evaluate(rubric, snapshot), now, bundle.snapshot_json)

    def rubric(self, rubric_id: str) -> Rubric:
        """The rubric that scores bundles of ``rubric_id``; a Refused when there is none."""
        if self.rubrics:
            if rubric_id not in self.rubrics:
                served = " or ".join(repr(i) for i in self.rubrics)
                raise Refused(f"a bundle of rubric {rubric_id!r}, not {served}")
            return self.rubrics[rubric_id]
        try:
            return self._installed(rubric_id)
        except UsageError as exc:
            raise Refused(str(exc)) from None


class Importer(Checker):
    """A Checker that stores what it checked into ``store``, as attempts of ``source``."""

    def __init__(
        self, store: Store, *, rubric_refs: Sequence[str] = (), secret: Path | None = None, source: str = "import"
    ):
        super().__init__(rubric_refs=rubric_refs, secret=secret)
        self.store, self.source = store, source

    def take(self, bundle: Bundle, student: str | None = None) -> Taken:
        """Store ``bundle`` under its student (or ``student``); a Refused says why not."""
        return self.keep([self.check(bundle, student)])[0]

    def keep(self, attempts: list[NewAttempt]) -> list[Taken]:
        """Store checked attempts in one transaction (all or none: a StoreError); one whose
        student already has its snapshot is skipped."""
        stored = self.store.record_new(attempts, self.source, self.identity)
        return [Taken(a.student, a.outcome, s, a.digest) for a, s in zip(attempts, stored, strict=True)]


@dataclass
class Imported:
    imported: list[str] = field(default_factory=list)  # one line per stored attempt
    skipped: list[str] = field(default_factory=list)  # bundles already in the store
    failed: list[str] = field(default_factory=list)  # one error line per bad file


def import_bundles(
    files: list[Path],
    *,
    rubric_ref: str | None = None,
    db_url: str | None = None,
    secret: Path | None = None,
    student: str | None = None,
) -> Imported:
    """Verify each bundle and store its snapshot as an attempt (source ``import``), scored again
    with ``rubric_ref`` (default: the installed rubric of the bundle's rubric id), at the time of
    its import: a live grade made after it outranks it. A bundle claiming a time more than
    CLOCK_SKEW after the import is refused. With the course ``secret``, a bundle must be sealed
    with the key of the student it is stored under (its own, or ``student`` for a single file)
    and its attempt is "verified"; without, "unverified". A bundle whose snapshot the student
    already has an attempt with is skipped, so importing twice is harmless. A bad file changes
    nothing and the others go on. The summary line of an attempt from the daemon of another
    student's attempt says so ("same daemon as NAME")."""
    from .provenance import same_daemon
    from .store import Store

    if student is not None and len(files) != 1:
        raise UsageError("--student names the student of one bundle: import one FILE with it")
    name = student_name(student) if student is not None else None
    importer = Importer(Store(db_url), rubric_refs=[rubric_ref] if rubric_ref else (), secret=secret)
    done = Imported()
    stored: list[tuple[int, str]] = []  # attempt id, line of the summary
    for path in files:
        try:
            bundle = read(path)
            taken = importer.take(bundle, name)
        except Refused as exc:
            done.failed.append(f"{path}: {exc}")
            continue
        except BundleError as exc:  # read's, which names the file
            done.failed.append(str(exc))
            continue
        if taken.attempt_id is None:
            done.skipped.append(f"{path}: already imported ({taken.student}, snapshot {taken.snapshot[:12]})")
            continue
        score = f"{taken.outcome.score:g}/{taken.outcome.max_score:g}"
        stored.append((taken.attempt_id, f"{path}: {taken.student} {score}"))
    shared = same_daemon(importer.store.attempts(checks=False)) if stored else {}
    for attempt_id, line in stored:
        said = ["identity not verified"] if importer.identity == "unverified" else []
        said += [f"same daemon as {', '.join(shared[attempt_id])}"] if attempt_id in shared else []
        done.imported.append(line + (f" ({'; '.join(said)})" if said else ""))
    return done
