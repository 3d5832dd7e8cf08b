"""Check kinds: one pure evaluator per kind, in a registry."""

# Importing registers the built-in kinds, objects' first: the order of the docs and the schema.
from . import objects, live  # noqa: F401, I001
from .registry import KINDS, Kind, Verdict, check_kind

__all__ = ["KINDS", "Kind", "Verdict", "check_kind"]
