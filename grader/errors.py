"""One error hierarchy; the CLI maps each class to a message and an exit code."""

from __future__ import annotations


class GraderError(Exception):
    """Base of every error the grader reports to a user."""

    exit_code = 1


class UsageError(GraderError):
    exit_code = 2


class DaemonUnreachable(GraderError):
    """The Docker daemon could not be reached, or was lost while grading. ``reason`` is
    ``unreachable``, ``tls`` (handshake or certificate refused) or ``timeout``."""

    exit_code = 3

    def __init__(self, message: str, reason: str = "unreachable"):
        self.reason = reason
        super().__init__(message)


class RubricError(GraderError):
    """A rubric file is invalid; ``problems`` holds one located message each."""

    exit_code = 78

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(GraderError):
    """The results store could not be opened, read or written (exit 4: for ``grade`` and
    ``check``, "graded, not stored": the result was shown)."""

    exit_code = 4


class BundleError(GraderError):
    """A submission bundle is corrupt, truncated, foreign or tampered with."""

    exit_code = 1


# What code that reads stored data raises on a record of an odd shape (a snapshot the store
# cannot read, a value of the wrong type, a key that is missing): the report's pages and the
# exports' rows catch these for one record, so that it is that record's error, not the class's.
ODD_DATA = (StoreError, ValueError, TypeError, LookupError, AttributeError, ArithmeticError)
