"""Small helpers shared across layers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), read lazily."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def one_line(exc: BaseException) -> str:
    """The last line of an exception's text (docker-py and requests put the gist there)."""
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
