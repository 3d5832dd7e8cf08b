"""One grading run: load the rubric, collect once, evaluate purely, store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .collect import DEFAULT_PROBE_IMAGE, collect, connect
from .errors import StoreError, UsageError
from .evaluate import evaluate
from .outcome import Outcome
from .rubric import load
from .rubric.model import Rubric
from .snapshot import Snapshot
from .standing import PARTIAL, Mode, with_progress

if TYPE_CHECKING:
    from .probe.runner import Cleanup
    from .store import Store


def student_store() -> str:
    """``check``'s results store when none is given: a SQLite file in the user's data folder
    (``~/.local/share/grader`` on Linux), so that a student's progress stays theirs wherever
    they run it from."""
    from platformdirs import user_data_path

    folder = user_data_path("grader", appauthor=False)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot make the folder of your progress store {folder}: {exc.strerror or exc}") from None
    return f"sqlite:///{folder / 'grader.db'}"


@dataclass
class Graded:
    student: str
    rubric: Rubric
    snapshot: Snapshot
    outcome: Outcome
    graded_at: str
    attempt_id: int | None = None
    store_error: str | None = None  # why the graded result could not be stored


def grade(
    rubric_ref: str,
    *,
    student: str,
    source: str = "grade",
    db_url: str | None = None,
    docker_host: str | None = None,
    task: int | None = None,
    probe_image: str = DEFAULT_PROBE_IMAGE,
    store: bool = True,
    mode: Mode | None = None,
    insecure_tcp: bool = False,
    cleanup: Cleanup | None = None,
) -> Graded:
    """Grade one daemon. In progress mode (the rubric's, or ``mode``) a checkpoint the
    student proved in an earlier stored attempt keeps its credit in the result. With a
    ``cleanup``, the probe containers may still be being removed when it returns (``collect``)."""
    rubric = load(rubric_ref)
    if task is not None and task not in rubric.numbers:
        raise UsageError(f"--task must be one of {', '.join(map(str, rubric.numbers))} for {rubric.id}")
    if task is not None:
        source += PARTIAL  # one task's checks: never counted as a whole attempt in final mode
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The store's code (SQLAlchemy, a third of a grade's imports) loads while the daemon is
        # reached, and the store opens (the schema's version) while the probes run. The daemon
        # is reached first: a store is never opened (nor a new SQLite file made) for a daemon
        # that cannot be graded.
        if store:
            pool.submit(_store_module)
        client = connect(docker_host, insecure_tcp=insecure_tcp)
        database = pool.submit(_open_store, db_url) if store else None
        snapshot = collect(rubric.probes(task), client=client, probe_image=probe_image, cleanup=cleanup)
        outcome = evaluate(rubric, snapshot, task=task)
        graded = Graded(student, rubric, snapshot, outcome, datetime.now(UTC).isoformat(timespec="seconds"))
        if database is not None:
            try:
                db = database.result()
                graded.attempt_id = db.record(student, rubric, snapshot, outcome, source)
                if (mode or rubric.mode) == "progress":
                    checks = with_progress(outcome.checks, db.attempts(rubric.id, student))
                    graded.outcome = outcome.model_copy(update={"checks": checks})
            except StoreError as exc:  # the result is still shown; the caller says it was not stored
                graded.store_error = str(exc)
    return graded


def _store_module() -> None:
    from . import store  # noqa: F401 - here: a run that stores nothing never loads SQLAlchemy


def _open_store(db_url: str | None) -> Store:
    from . import store

    return store.Store(db_url)
