"""Check kinds: one pure evaluator per kind, in a registry."""

from . import live, objects  # noqa: F401 - importing registers the built-in kinds
from .registry import KINDS, Kind, Verdict, check_kind

__all__ = ["KINDS", "Kind", "Verdict", "check_kind"]
