"""Debian root file systems made offline-ready with debootstrap, and the bench's cache.

Whatever is built here is built once per machine and kept in ``CACHE``. Several test sessions
may start at once: a build holds a lock on its target, so the second session waits and then
finds the first one's result instead of writing the same file at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .system import run

CACHE = Path(os.environ.get("GRADER_BENCH_CACHE", "/var/cache/grader-bench"))
# What no container or engine of the bench reads: dropped to keep the cache and images small.
TRIM = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
]


def debootstrap(root: Path, suite: str, include: str, script: str | None = None) -> None:
    """A minbase rootfs of ``suite`` with ``include`` at ``root``, from debootstrap's default
    mirror, trimmed. ``script`` is the suite script to use when debootstrap has none of that
    suite's name (bookworm's debootstrap knows no forky: the sid script serves)."""
    args = ["debootstrap", "--variant=minbase", f"--include={include}", suite, str(root)]
    if script:
        args += ["", script]  # an empty mirror argument is debootstrap's default mirror
    run(*args, timeout=900)
    for rel in TRIM:
        shutil.rmtree(root / rel, ignore_errors=True)


@contextlib.contextmanager
def building(target: Path) -> Iterator[None]:
    """Hold the build lock of a cache entry; check again for it inside, another session may
    have built it while this one waited."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
