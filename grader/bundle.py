"""Submission bundles: what a student hands in from ``grader check --submit FILE``, and what
``grader import`` stores for the instructor.

A bundle is one JSON file (gzip-compressed when its name ends in ``.gz``): a format marker and
version, the student's name, the rubric (id, version, digest) it was checked with, the sealed
Snapshot of the student's daemon, the student's own outcome (informational only), a sha256 of
all of it and, when the student has a key, the seal made with it (``grader.keys``). Import
verifies the file and the snapshot's own digest, then scores the snapshot again with the
instructor's rubric: the bundle's scores are never trusted.

The digests catch corrupt, truncated and hand-edited files; they are not a signature (the
student runs the grader and could seal evidence of their own making). The seal, checked with
``import --secret``, says who made the bundle; never that its evidence is real.

A bundle comes from a student's machine, so reading one is bounded: only a regular file (a
FIFO or a device would block or never end), at most MAX_FILE bytes, at most MAX_JSON bytes once
decompressed (read as a stream: a gzip bomb stops at the limit), JSON nested at most 200 deep.
Its snapshot must have the shape of inspect JSON down to every field the checks, the report and
the exports read, the watch's containers and events included (``_Evidence``, of every field the
Snapshot model leaves untyped), so a resealed, malformed one is refused here instead of failing
later. A UTF-8 byte order mark before the JSON is read past."""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Required

import pydantic_core
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from typing_extensions import TypedDict  # pydantic takes typing.TypedDict only from Python 3.12

from . import __version__, keys
from .errors import BundleError, UsageError
from .outcome import Outcome
from .snapshot import Snapshot, canonical, canonical_digest, text_digest
from .util import NotRead, first_problem, read_capped, write_file

if TYPE_CHECKING:
    from .grading import Graded

FORMAT = "grader-submission"
VERSION = 2  # 2: the seal
READS = (1, 2)
NAME = r"^[^\x00-\x1f\x7f]{1,200}$"  # a student's name: one line, as long as the store keeps
# A student's clock may run a little ahead of the instructor's; a bundle from further in the
# future is refused (a claimed 2099 once made an import outrank every later grade).
CLOCK_SKEW = timedelta(minutes=5)
# A bundle is some 50 KB of JSON (10 KB gzipped); the limits leave room for the largest
# daemon a lab makes, with every probe's output at its cap.
MAX_FILE = 16 << 20  # bytes of the file as handed in
MAX_JSON = 64 << 20  # bytes of its JSON, once decompressed
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark: some editors write it first (Notepad)
# Parsed, 64 MB of `{},{},...` would take 2 GB: the JSON's separators (an upper bound of its
# values) are counted first. A bundle has some 2,000.
MAX_VALUES = 1_000_000


class BundleRubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")  # an installed rubric's id, never a path
    version: str
    digest: str


class Bundle(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["grader-submission"] = FORMAT
    version: Literal[1, 2] = VERSION
    student: str = Field(pattern=NAME)
    rubric: BundleRubric
    created_at: str
    grader_version: str
    snapshot: Snapshot
    outcome: Outcome  # what the student's grader said: informational, never imported
    digest: str = ""
    seal: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # made with the student's key, of the digest
    _read: tuple[Snapshot, str] | None = PrivateAttr(None)  # see snapshot_json

    @field_validator("snapshot")
    @classmethod
    def _dated(cls, snapshot: Snapshot) -> Snapshot:
        datetime.fromisoformat(snapshot.taken_at)
        return snapshot

    @property
    def taken_at(self) -> datetime:
        """When the bundle claims the student's daemon was inspected. Kept as claimed (in the
        snapshot); the attempt's place in the student's history is its import."""
        taken = datetime.fromisoformat(self.snapshot.taken_at)
        return taken if taken.tzinfo else taken.replace(tzinfo=UTC)

    @property
    def snapshot_json(self) -> str | None:
        """The snapshot's canonical JSON as ``parse`` verified it (the store keeps it instead of
        writing the snapshot again); None for a bundle made here, or given another snapshot."""
        read = self._read
        return read[1] if read is not None and read[0] is self.snapshot else None

    def content_digest(self) -> str:
        # Not of the seal, which is of the digest (and a version-1 bundle has none).
        return canonical_digest(self.model_dump(mode="json", exclude={"digest", "seal"}))


def student_name(name: str) -> str:
    """``name`` as a bundle keeps it, or a UsageError."""
    name = name.strip()
    if not re.match(NAME, name):
        raise UsageError(f"a student's name is one line of 1 to 200 characters, not {name[:40]!r}")
    return name


def write(graded: Graded, path: Path, key: str | None = None) -> Bundle:
    """Write ``graded`` (a whole-lab check) as a bundle to ``path``, sealed with the student's
    ``key`` when given."""
    bundle = sealed(graded, key)
    write_file(path, encoded(bundle, packed=path.name.endswith(".gz")))
    return bundle


def sealed(graded: Graded, key: str | None = None) -> Bundle:
    """``graded`` (a whole-lab check) as a bundle, sealed with the student's ``key`` when given."""
    rubric = graded.rubric
    bundle = Bundle(
        student=student_name(graded.student),
        rubric=BundleRubric(id=rubric.id, version=rubric.version, digest=rubric.digest),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        grader_version=__version__,
        snapshot=graded.snapshot,
        outcome=graded.outcome,
    )
    digest = bundle.content_digest()
    return bundle.model_copy(update={"digest": digest, "seal": keys.seal(key, digest) if key else None})


def encoded(bundle: Bundle, packed: bool = False) -> bytes:
    """The bytes of ``bundle`` as a file or a request carries it (gzip-compressed: ``packed``)."""
    text = bundle.model_dump_json(indent=1).encode()
    return gzip.compress(text) if packed else text


def read(path: Path) -> Bundle:
    """The verified bundle in ``path``; a BundleError naming the file says what is wrong with it."""
    return parse(_file_bytes(path, lambda problem: BundleError(f"{path}: {problem}")), f"{path}: ")


def parse(data: bytes, where: str = "") -> Bundle:
    """The verified bundle of ``data`` (a file's bytes, or a request's body); a BundleError
    says, after ``where``, what is wrong with it."""

    def bad(problem: str) -> BundleError:
        return BundleError(f"{where}{problem}")

    if len(data) > MAX_FILE:
        raise bad(f"not a submission bundle (larger than {MAX_FILE >> 20} MB)")
    try:
        text = _inflate(data, bad) if data[:2] == b"\x1f\x8b" else data
        text = text.removeprefix(BOM)
        if len(text) > MAX_VALUES and sum(text.count(mark) for mark in (b",", b"{", b"[")) > MAX_VALUES:
            raise bad(f"not a submission bundle (more than {MAX_VALUES:,} JSON values)")
        body = pydantic_core.from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        if "recursion limit" in str(exc):  # the parser's own bound, instead of a RecursionError
            raise bad("not a submission bundle (JSON nested more than 200 levels deep)") from None
        raise bad("not a submission bundle (not JSON, or truncated)") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise bad(f"not a submission bundle (no {FORMAT!r} marker)")
    if body.get("version") not in READS:
        versions = " and ".join(map(str, READS))
        raise bad(f"bundle format version {body.get('version')!r}; this grader reads versions {versions}")
    try:
        bundle = Bundle.model_validate(body)
    except ValidationError as exc:
        raise bad(f"invalid bundle: {first_problem(exc)}") from None
    try:
        snapshot_holds, bundle_holds, bundle._read = _digests_hold(bundle)
    except TypeError:  # canonical JSON has no room for it: no daemon reports one
        raise bad("not a submission bundle (an integer of more than 64 bits)") from None
    if not snapshot_holds:
        raise bad("the snapshot does not match its digest (the evidence was edited or damaged)")
    if not bundle_holds:
        raise bad("the bundle does not match its digest (edited or damaged)")
    try:
        _EVIDENCE.validate_python(_evidence(bundle.snapshot), strict=True)
    except ValidationError as exc:
        raise bad(f"invalid bundle: snapshot.{first_problem(exc)}") from None
    return bundle


def _digests_hold(bundle: Bundle) -> tuple[bool, bool, tuple[Snapshot, str]]:
    """Whether the snapshot matches its digest (``Snapshot.verify``) and the bundle its own
    (``Bundle.content_digest``), from one dump and one serialisation of the snapshot: its
    canonical JSON is what both digests are of, and what the store keeps (a live class takes
    150 bundles a second; each digest made on its own dumped and serialised the snapshot again,
    and the store wrote it a third time)."""
    snapshot = bundle.snapshot
    # Dumped as Python, not as JSON, in half the time: a parsed bundle holds JSON's types only.
    pieces = {key: canonical(value) for key, value in snapshot.dumped().items()}
    without = {key: piece for key, piece in pieces.items() if key != "digest"}
    snapshot_holds = bool(snapshot.digest) and text_digest(_joined(without)) == snapshot.digest
    rest = bundle.model_dump(exclude={"digest", "seal", "snapshot"})
    top = {key: canonical(value) for key, value in rest.items()}
    whole = _joined(pieces)
    return snapshot_holds, text_digest(_joined({**top, "snapshot": whole})) == bundle.digest, (snapshot, whole)


def _joined(pieces: dict[str, str]) -> str:
    """The canonical JSON of an object whose values' canonical JSON is ``pieces`` (as
    canonical_digest writes it: keys sorted)."""
    return "{" + ",".join(f"{canonical(key)}:{piece}" for key, piece in sorted(pieces.items())) + "}"


def _file_bytes(path: Path, bad: Callable[[str], BundleError]) -> bytes:
    """The file's bytes, if it is a regular file of at most MAX_FILE bytes."""
    try:
        return read_capped(path, MAX_FILE)
    except NotRead as exc:
        raise bad(f"not a submission bundle ({exc})") from None
    except OSError as exc:
        raise bad(f"cannot read: {exc.strerror}") from None


def _inflate(data: bytes, bad: Callable[[str], BundleError]) -> bytes:
    """gzip ``data`` decompressed a MB at a time, refused past MAX_JSON bytes: a 4 GB bomb costs
    what its first 64 MB do. Concatenated gzip members are read one after the other."""
    chunks: list[bytes] = []
    size = 0
    rest = data
    try:
        while rest:
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while not member.eof:
                chunk = member.decompress(rest, 1 << 20)
                rest = member.unconsumed_tail
                if not chunk and not rest:  # the input ended inside the member
                    raise bad("not a submission bundle (not JSON, or truncated)")
                size += len(chunk)
                if size > MAX_JSON:
                    raise bad(f"not a submission bundle (decompresses to more than {MAX_JSON >> 20} MB)")
                chunks.append(chunk)
            rest = member.unused_data
    except zlib.error:
        raise bad("not a submission bundle (not JSON, or truncated)") from None
    return b"".join(chunks)


# -- the shape of the evidence ---------------------------------------------------------------
# What grader.facts, the checks and the report read of the inspect JSON, typed (strictly:
# nothing is converted). Only checked: the snapshot keeps its JSON as the daemon gave it.


class _EndpointIPAM(TypedDict, total=False):
    IPv4Address: str | None
    IPv6Address: str | None


class _Endpoint(TypedDict, total=False):
    IPAddress: str | None
    Aliases: list[str] | None
    DNSNames: list[str] | None
    IPAMConfig: _EndpointIPAM | None


class _Binding(TypedDict, total=False):
    HostPort: str | None
    HostIp: str | None


_Ports = dict[str, list[_Binding] | None] | None


class _Config(TypedDict, total=False):
    Image: Required[str]
    Cmd: list[str] | None
    Env: list[str] | None
    Entrypoint: list[str] | None
    Labels: dict[str, str] | None
    Hostname: str | None


class _State(TypedDict, total=False):
    Running: bool
    Status: str
    ExitCode: int


class _HostConfig(TypedDict, total=False):
    Links: list[str] | None
    NetworkMode: str | None
    PortBindings: _Ports
    Tmpfs: dict[str, str] | None


class _Mount(TypedDict, total=False):
    Type: str
    Name: str
    Source: str
    Destination: str
    RW: bool


class _NetworkSettings(TypedDict, total=False):
    Networks: dict[str, _Endpoint] | None
    Ports: _Ports


class _Container(TypedDict, total=False):
    Id: Required[str]
    Name: Required[str]
    Image: str
    Created: str
    Config: Required[_Config]
    State: Required[_State]
    HostConfig: Required[_HostConfig]
    NetworkSettings: Required[_NetworkSettings]
    Mounts: list[_Mount] | None


class _Subnet(TypedDict, total=False):
    Subnet: str
    Gateway: str


class _IPAM(TypedDict, total=False):
    Config: list[_Subnet] | None


class _Network(TypedDict, total=False):
    Name: Required[str]
    Id: Required[str]
    Driver: Required[str]
    Containers: dict[str, dict[str, Any]] | None
    Internal: bool
    EnableIPv6: bool
    Attachable: bool
    Labels: dict[str, str] | None
    IPAM: _IPAM | None


class _Image(TypedDict, total=False):
    Id: Required[str]
    RepoTags: list[str] | None


class _Engine(TypedDict, total=False):
    Version: str
    ApiVersion: str
    NegotiatedApiVersion: str
    ID: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]  # as the store keeps it


class _ProbeData(TypedDict, total=False):
    state: bool
    vars: dict[str, str]
    entries: list[list[str]]
    nameservers: list[str]
    addresses: list[str]
    address: str | None
    bodies: list[str]
    reply: str


class _Probe(TypedDict):
    data: _ProbeData


class _Event(TypedDict):
    time: str
    type: str
    action: str
    name: str


class _Evidence(TypedDict):
    engine: _Engine
    containers: list[_Container]
    networks: list[_Network]
    images: list[_Image]
    probes: dict[str, _Probe]
    ephemeral: list[_Container]  # `check --watch`'s containers gone since
    timeline: list[_Event]  # and the daemon's events it saw


_EVIDENCE = TypeAdapter(_Evidence)


def _evidence(snapshot: Snapshot) -> dict[str, Any]:
    """The parts of ``snapshot`` that _Evidence types (the rest its model types already)."""
    return {
        "engine": snapshot.engine,
        "containers": snapshot.containers,
        "networks": snapshot.networks,
        "images": snapshot.images,
        "probes": {key: {"data": probe.data} for key, probe in snapshot.probes.items()},
        "ephemeral": snapshot.ephemeral,
        "timeline": snapshot.timeline,
    }
