"""Where the attempts that make a student's standing came from, as the report, the exports and
the import summary say it: whether an imported bundle's sender was verified with a student key,
and which other students' attempts came from the same daemon (they share the engine's ID or a
container's ID: copied evidence, or one machine used by two).

A daemon's engine ID is made when Docker first starts: machines cloned from one image after that
share it (delete /var/lib/docker/engine-id before cloning). A container's ID is random."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .standing import Mode, Standing
    from .store import Attempt

NOT_VERIFIED = "not verified"


def identity(s: Standing, mode: Mode) -> str | None:
    """How the attempts that count for ``s`` came in: "not verified" when one is an import
    whose sender was not verified, else "verified" when one is a verified import, else "live"
    (the grader inspected the daemon itself); None without a graded attempt. In progress mode
    every graded attempt may count (a checkpoint keeps its credit)."""
    counted = [a for a in s.attempts if a.ok] if mode == "progress" else [s.latest] if s.latest else []
    if not counted:
        return None
    kinds = {a.identity for a in counted}
    return NOT_VERIFIED if "unverified" in kinds else "verified" if "verified" in kinds else "live"


def attempt_identity(attempt: Attempt) -> str:
    """One attempt's: "verified", "not verified" (imports), or "live"."""
    return {"verified": "verified", "unverified": NOT_VERIFIED}.get(attempt.identity or "", "live")


def same_daemon(attempts: Iterable[Attempt]) -> dict[int, list[str]]:
    """Attempt id -> the other students with an attempt from the same daemon, by name; only
    attempts that have such students are keys."""
    attempts = list(attempts)
    students: dict[str, set[str]] = {}  # engine or container ID -> students
    for a in attempts:
        for ident in daemon_idents(a):
            students.setdefault(ident, set()).add(a.student)
    shared: dict[int, list[str]] = {}
    for a in attempts:
        others = set().union(*(students[i] for i in daemon_idents(a))) - {a.student}
        if others:
            shared[a.id] = sorted(others)
    return shared


def daemon_idents(attempt: Attempt) -> list[str]:
    engine = [f"engine {attempt.engine_id}"] if attempt.engine_id else []
    return engine + [f"container {c}" for c in attempt.container_ids]


def shared_by(attempts: Iterable[Attempt], shared: dict[int, list[str]]) -> list[str]:
    """The other students any of ``attempts`` shares a daemon with (e.g. a standing's)."""
    return sorted({name for a in attempts for name in shared.get(a.id, ())})
