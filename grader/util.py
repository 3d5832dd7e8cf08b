"""Small helpers shared across layers."""

from __future__ import annotations

import functools
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from .errors import UsageError

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


def remembered(answers: int, characters: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A function of strings (and tuples of strings) whose last ``answers`` answers are
    remembered, for questions of at most ``characters`` characters in all: a student's daemon
    decides how long a question is, so a longer one is answered each time and the memory held
    stays bounded. ``cache_info()`` tells what is remembered."""

    def size(argument: Any) -> int:
        return len(argument) if isinstance(argument, str) else sum(map(len, argument))

    def wrap(function: Callable[..., T]) -> Callable[..., T]:
        cached = functools.lru_cache(maxsize=answers)(function)

        @functools.wraps(function)
        def answer(*arguments: Any) -> T:
            small = sum(map(size, arguments)) <= characters
            return cached(*arguments) if small else function(*arguments)

        answer.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return answer

    return wrap


def counted(number: int, noun: str) -> str:
    """``1 daemon``, ``2 daemons``: a count in the instructor's English output (what a student
    reads goes through the catalog's plural forms)."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def one_line(exc: BaseException) -> str:
    """The last line of an exception's text (docker-py and requests put the gist there)."""
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def first_problem(exc: BaseException) -> str:
    """What is wrong, in one line: a pydantic error's first problem where it is (``timeline.0:
    Input should be a valid dictionary``), any other error's first line."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        return f"{where}: {first['msg']}" if where else first["msg"]  # no place: the whole value is wrong
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def writable(path: Path, folder: bool = False) -> None:
    """Refuse, before any work is done, a file (or with ``folder``, a folder that may not exist
    yet) that could not be written: a UsageError naming it and why. The folder is tried with a
    temporary file, which a read-only mount or an access list refuses too (for root as well)."""
    where = path if folder else path.parent
    while folder and not where.exists() and where != where.parent:  # made when written
        where = where.parent
    try:
        if path.is_dir() and not folder:
            raise IsADirectoryError(21, "it is a folder")
        if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
            raise PermissionError(13, "permission denied")
        if not where.is_dir():
            raise NotADirectoryError(20, f"{where} is not a folder" if where.exists() else f"no folder {where}")
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        raise _unwritable(path, exc) from None


def write_file(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` (its folder made if missing); a full disk or any other failure
    is a UsageError naming the file and why (as ``writable`` says it before the work)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    except OSError as exc:
        raise _unwritable(path, exc) from None


def _unwritable(path: Path, exc: OSError) -> UsageError:
    return UsageError(f"cannot write {path}: {exc.strerror or exc}")


class NotRead(Exception):
    """A file ``read_capped`` refused; its text says what it is, after the file's name."""


class NotRegular(NotRead):
    """Not a regular file: "a FIFO", "a device", "a directory", "a socket"."""


class TooLarge(NotRead):
    """Larger than the limit: "larger than 16 MB"."""


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes: the one reader
    of a file that may come from elsewhere (a bundle, a rubric, a roster, a secret, a TLS file).
    A FIFO would block and a device never end: NotRegular. Past ``limit``: TooLarge, having
    read ``limit + 1`` bytes at most. The OS's refusal (missing, denied, a symlink loop) is its
    OSError."""
    # Non-blocking: opening a FIFO would otherwise wait for a writer that never comes.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode  # of what was opened: no race with a file swapped meanwhile
        if not stat.S_ISREG(mode):
            raise NotRegular(_KINDS.get(stat.S_IFMT(mode), "not a regular file"))
        with open(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        mb = limit >> 20
        raise TooLarge(f"larger than {mb} MB" if mb and limit == mb << 20 else f"larger than {limit} bytes")
    return data
