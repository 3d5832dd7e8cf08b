"""A rubric's regular expressions, matched by RE2 in time linear in the text.

A student controls the text a check matches (a command line, an HTTP body, a command's
output), and Python's ``re`` backtracks: ``^(\\w+\\s?)*$`` over 36 characters of ``aaa…a!``
ran past a minute of CPU. RE2 never backtracks, so it refuses what needs backtracking
(backreferences, lookaround); a pattern it refuses is the rubric's located error at load, when
it is compiled once. The grader's own fixed patterns stay with ``re``."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import re2
from pydantic import AfterValidator

from ..util import remembered

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr


@lru_cache(maxsize=1024)
def regex(pattern: str, lines: bool = False) -> Any:
    """``pattern`` compiled by RE2; with ``lines``, ``^`` and ``$`` match at each line's ends.
    Cached: a rubric's patterns are compiled when it is loaded, and then once per process."""
    return re2.compile(f"(?m){pattern}" if lines else pattern, _OPTIONS)


@remembered(answers=4096, characters=1024)
def found(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (a command line). RE2's Python wrapper
    costs some 25 microseconds a search, and the live class asks again and again of the same
    students' same containers, so a short question's answer is remembered (4 MB at most)."""
    return regex(pattern).search(text) is not None


def _compiles(lines: bool) -> AfterValidator:
    def check(pattern: str) -> str:
        try:
            regex(pattern)  # refused alone, so that the message quotes the pattern as written
            regex(pattern, lines)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            syntax = "RE2 syntax: no backreference, no lookaround"
            raise ValueError(f"not a valid regular expression ({syntax}): {reason}") from None
        return pattern

    return AfterValidator(check)


# A text field of a check kind's parameters that is a regular expression over student text.
Regex = Annotated[str, _compiles(lines=False)]
# The same, searched line by line (``^`` and ``$`` at each line's start and end).
LineRegex = Annotated[str, _compiles(lines=True)]
