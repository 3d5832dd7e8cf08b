"""The Snapshot: plain, JSON-serialisable evidence of one daemon at one moment.

Containers, networks and images are kept as the Engine API's own inspect JSON (the
shape differs between engine versions; ``grader.facts`` reads both). Probe results are
what the grader saw from inside the daemon's networks.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field


def canonical_digest(body: Any) -> str:
    """sha256 of ``body``'s canonical JSON."""
    return text_digest(canonical(body))


def canonical(body: Any) -> str:
    """``body``'s canonical JSON: sorted keys, no spaces, text as UTF-8 (what ``json.dumps(body,
    sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` writes, and wrote before: a
    digest made by an earlier grader holds), by orjson in a fifth of the time (a live class
    digests 150 snapshots a second). What it cannot write (an integer past 64 bits) is a
    TypeError; no snapshot of a daemon holds one, nor NaN (orjson would write null, json NaN),
    and a bundle carrying either is refused as it is read."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _empty(value: list[Any]) -> bool:
    return not value


class ProbeResult(BaseModel):
    """One live fact observed inside a network, e.g. ``resolve redis on backend-network``."""

    model_config = ConfigDict(extra="forbid")

    key: str
    kind: str
    network: str
    target: str
    ok: bool
    output: str = ""
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    duration: float = 0.0


UNTYPED = ("engine", "containers", "networks", "images", "ephemeral", "timeline")  # Snapshot's inspect JSON


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grader_version: str
    taken_at: str
    docker_host: str = ""
    engine: dict[str, Any] = Field(default_factory=dict)
    containers: list[dict[str, Any]] = Field(default_factory=list)
    networks: list[dict[str, Any]] = Field(default_factory=list)
    images: list[dict[str, Any]] = Field(default_factory=list)
    probes: dict[str, ProbeResult] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    # Only from `check --watch`: containers it inspected as they were created or started that
    # are gone since (``docker run --rm``), and the daemon's events it saw, oldest first. Left
    # out when empty: a snapshot of any other run is the same JSON, with the same digest, as
    # before they existed. (A field's exclude_if keeps serialising in pydantic's core; a model
    # serializer made every dump go through Python, a millisecond a snapshot.)
    ephemeral: list[dict[str, Any]] = Field(default_factory=list, exclude_if=_empty)
    timeline: list[dict[str, Any]] = Field(default_factory=list, exclude_if=_empty)
    digest: str = ""

    def content_digest(self) -> str:
        """sha256 of the canonical JSON of everything but the digest itself."""
        return canonical_digest(self.model_dump(mode="json", exclude={"digest"}))

    def dumped(self) -> dict[str, Any]:
        """``model_dump()`` in a third of its time, for a snapshot read from JSON: the inspect
        JSON the model leaves untyped (``UNTYPED``, the probes' ``data``) holds JSON's types only,
        which a dump would walk and copy, so it is given as it is (shared: not to be changed)."""
        dump = self.model_dump(exclude={**dict.fromkeys(UNTYPED, True), "probes": {"__all__": {"data"}}})
        for key in UNTYPED:
            value, skipped = getattr(self, key), Snapshot.model_fields[key].exclude_if
            if skipped is None or not skipped(value):
                dump[key] = value
        for key, probe in dump["probes"].items():
            probe["data"] = self.probes[key].data
        return dump

    def sealed(self) -> Snapshot:
        return self.model_copy(update={"digest": self.content_digest()})

    def verify(self) -> bool:
        return bool(self.digest) and self.digest == self.content_digest()

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> Snapshot:
        # Parsing first, then validating the Python objects, is a third faster than
        # model_validate_json on snapshots this size (regrade reads thousands).
        return cls.model_validate(pydantic_core.from_json(text))
