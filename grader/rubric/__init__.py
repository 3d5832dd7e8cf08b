"""Rubrics: models, loading and located errors."""

from .load import bundled, load, parse, resolve
from .model import Check, Rubric, Task, json_schema

__all__ = ["Check", "Rubric", "Task", "bundled", "json_schema", "load", "parse", "resolve"]
