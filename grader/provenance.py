"""Where the attempts that make a student's standing came from, as the report and the exports
say it: whether an imported bundle's sender was verified with a student key."""

from __future__ import annotations

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
