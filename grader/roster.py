"""The class roster: one CSV file, read here for every command that takes one (``grader
batch``, ``grader keys``, ``grader export --roster``).

Columns: ``student``, ``docker_host`` (``unix://``, ``tcp://host:port`` or ``ssh://user@host``),
and optionally ``tls_ca``, ``tls_cert``, ``tls_key`` (paths relative to the roster), ``email``
and ``sis_id`` (which identify a student to an LMS). Separated by commas, semicolons or tabs.

A roster is read as any file from elsewhere is: a regular file of at most MAX_BYTES, parsed by
the CSV reader from its first byte, so that a quoted line break inside a name is seen (and
refused) rather than split into two rows or silently joined."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .util import NotRead, read_capped

if TYPE_CHECKING:
    from .collect import TLSFiles

# email and sis_id identify a student to an LMS (grader export --format moodle|canvas).
COLUMNS = ("student", "docker_host", "tls_ca", "tls_cert", "tls_key", "email", "sis_id")
# A row is some 100 bytes (300 with TLS paths): 4 MB holds a class of ten thousand.
MAX_BYTES = 4 << 20
MAX_TLS_FILE = 1 << 20  # a PEM certificate or key has a few KB
# No name, address or path holds one (and PostgreSQL refuses a NUL in text).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Target:
    """One roster row: a student and how to reach their daemon."""

    student: str
    docker_host: str
    tls: TLSFiles | None = None


def read_roster(path: str | Path, class_tls: TLSFiles | None = None, insecure_tcp: bool = False) -> list[Target]:
    """The students of a roster and their daemons (``grader batch``); a row without TLS files
    uses the class's, for ``tcp://`` hosts. A row's TLS files must be there."""
    from .collect import check_host  # not at the top: export and keys read rosters without docker

    path = Path(path)
    targets: list[Target] = []
    for line, row in _rows(path, COLUMNS[:2]):
        host = row.get("docker_host", "")
        tls = _tls(row, path.parent, f"{path}:{line}") or (class_tls if host.startswith("tcp://") else None)
        try:
            check_host(host, tls is not None, insecure_tcp)
        except UsageError as exc:
            raise UsageError(f"{path}:{line}: {exc}") from None
        targets.append(Target(row["student"], host, tls))
    if not targets:
        raise UsageError(f"{path}: the roster lists no student")
    return targets


def roster_students(path: str | Path) -> list[str]:
    """The students of a roster (``grader keys``)."""
    return [row["student"] for row in roster_rows(path)]


def roster_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a roster read as ``read_roster`` reads it, for which only the ``student``
    column is needed (``grader keys``, ``grader export``'s identifiers)."""
    path = Path(path)
    rows = [row for _, row in _rows(path, COLUMNS[:1])]
    if not rows:
        raise UsageError(f"{path}: the roster lists no student")
    return rows


def roster_bytes(path: Path) -> bytes:
    """The roster's bytes, if it is a regular file of at most MAX_BYTES, else a UsageError."""
    try:
        return read_capped(path, MAX_BYTES)
    except NotRead as exc:
        raise UsageError(f"{path}: not a roster ({exc}); a roster is a CSV file") from None
    except OSError as exc:
        raise UsageError(f"cannot read the roster {path}: {exc.strerror}") from None


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, stripped cells) of each row that names a student, once the header has the
    ``required`` columns and no unknown one; a row without student and docker_host is skipped."""
    try:
        text = roster_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read the roster {path}: not UTF-8 (byte {exc.start}); save it as UTF-8 CSV") from None
    # The header's first line is all the sniffer needs (a header has some 60 characters): its
    # regular expressions are not linear.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text.partition("\n")[0][:1000]))
    try:
        yield from _named_rows(path, reader, required)
    except csv.Error as exc:  # a NUL, a cell over the CSV reader's 128 KB
        raise UsageError(f"{path}:{reader.line_num}: not CSV: {exc}") from None


def _named_rows(path: Path, reader: Any, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    columns = [c.strip() for c in next(reader, [])]
    missing = [c for c in required if c not in columns]
    unknown = [c for c in columns if c not in COLUMNS]
    if missing or unknown:
        problem = f"missing column(s) {', '.join(missing)}" if missing else f"unknown column(s) {', '.join(unknown)}"
        raise UsageError(f"{path}:1: {problem}; the columns are {', '.join(COLUMNS)}")
    seen: set[str] = set()
    end = reader.line_num
    for cells in reader:
        line, end = end + 1, reader.line_num  # the row's first and last lines
        if line != end:
            raise UsageError(f"{path}:{line}: a quoted cell holds a line break; a student's row is one line")
        if control := next((found for cell in cells if (found := CONTROL.search(cell))), None):
            raise UsageError(f"{path}:{line}: a cell holds the control character U+{ord(control.group()):04X}")
        row = dict.fromkeys(columns, "") | {c: v.strip() for c, v in zip(columns, cells, strict=False) if c}
        student = row.get("student", "")
        if not student and not row.get("docker_host"):
            continue
        if not student:
            raise UsageError(f"{path}:{line}: the student is empty")
        if student in seen:
            raise UsageError(f"{path}:{line}: student {student!r} is listed twice")
        seen.add(student)
        yield line, row


def _delimiter(header: str) -> str:
    """``,`` or, as spreadsheets save CSV where the decimal mark is a comma (Indonesia among
    them), ``;``; or a tab."""
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error:  # one column: the error about missing ones says what is wrong
        return ","


def _tls(row: dict[str, str], base: Path, where: str) -> TLSFiles | None:
    from .collect import TLSFiles

    given = {k: row.get(f"tls_{k}", "") for k in ("ca", "cert", "key")}
    if not any(given.values()):
        return None
    if not all(given.values()):
        raise UsageError(f"{where}: give all of tls_ca, tls_cert and tls_key, or none")
    files = {k: base / v for k, v in given.items()}
    for k, file in files.items():
        try:
            read_capped(file, MAX_TLS_FILE)  # here, where the row is known: the daemon's error would not name it
        except NotRead as exc:
            raise UsageError(f"{where}: tls_{k} {file} is not a TLS file ({exc})") from None
        except OSError as exc:
            raise UsageError(f"{where}: tls_{k} {file}: {exc.strerror}") from None
    return TLSFiles(**{k: str(file) for k, file in files.items()})
