"""Submission bundles: ``grader check --submit`` writes one, ``grader import`` verifies it and
scores its snapshot again with the instructor's rubric. Bad files are one-line errors that
change nothing in the store. Unit tests over the snapshots recorded on the bench (tests/golden),
on SQLite and a real PostgreSQL; one end-to-end run on the bench."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench.daemon import BenchDaemon
from click.testing import CliRunner, Result

from grader.bundle import MAX_JSON, read, write
from grader.cli import main
from grader.errors import BundleError, UsageError
from grader.evaluate import evaluate
from grader.grading import Graded
from grader.importing import import_bundles
from grader.rubric import load
from grader.snapshot import Snapshot, canonical, canonical_digest
from grader.standing import standing
from grader.store import Store

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent


def submit(tmp_path: Path, case: str, student: str = "ani", name: str = "ani.json", key: str | None = None) -> Path:
    """The bundle a student's ``grader check --submit [--key KEY]`` writes for a recorded daemon."""
    rubric = load((GOLDEN / case / "rubric").read_text().strip())
    snapshot = Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())
    path = tmp_path / name
    write(Graded(student, rubric, snapshot, evaluate(rubric, snapshot), snapshot.taken_at), path, key)
    return path


def edit(path: Path, change, reseal: bool = False) -> Path:
    """Change a bundle's JSON the way a student with an editor would; ``reseal`` recomputes
    the bundle digest (anyone can: it is not a signature)."""
    body = json.loads(path.read_text())
    change(body)
    if reseal:
        body["digest"] = canonical_digest({k: v for k, v in body.items() if k not in ("digest", "seal")})
    path.write_text(json.dumps(body))
    return path


def forge(path: Path, change) -> Path:
    """Change the evidence and reseal both digests, as a student who forges a bundle would."""

    def changed(body: dict) -> None:
        change(body)
        snapshot = body["snapshot"]
        snapshot["digest"] = canonical_digest({k: v for k, v in snapshot.items() if k != "digest"})

    return edit(path, changed, reseal=True)


def run_import(*args: str) -> Result:
    return CliRunner().invoke(main, ["import", *args])


def test_round_trip(db_url: str, tmp_path: Path) -> None:
    plain = submit(tmp_path, "networks-typo")
    packed = submit(tmp_path, "links-reference", student="budi", name="budi.json.gz")
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    bundle = read(plain)
    typo = Snapshot.from_json((GOLDEN / "networks-typo" / "snapshot.json").read_text())
    assert (bundle.format, bundle.version, bundle.student, bundle.snapshot) == ("grader-submission", 2, "ani", typo)
    assert bundle.rubric.id == "docker-networks" and bundle.rubric.digest == load("docker-networks").digest

    before = datetime.now(UTC)
    done = import_bundles([plain, packed], db_url=db_url)

    assert (len(done.imported), done.skipped, done.failed) == (2, [], [])
    ani, budi = Store(db_url).attempts()
    rubric = load("docker-networks")
    assert (ani.student, ani.source, ani.snapshot_digest) == ("ani", "import", typo.digest)
    assert ani.checks == evaluate(rubric, typo).checks and 0 < ani.score < ani.max_score
    assert before <= ani.graded_at <= datetime.now(UTC)  # when imported, not when the bundle says
    assert bundle.taken_at < before
    assert (budi.student, budi.rubric_id, budi.score) == ("budi", "docker-links", budi.max_score)
    assert Store(db_url).snapshot(typo.digest) == typo  # with the time it claims, as claimed


PROBE = {"key": "p", "kind": "resolve", "network": "n", "target": "t", "ok": 1, "duration": 2, "data": {"a": [1]}}


def test_canonical_json_is_what_json_dumps_wrote() -> None:
    # Digests made by earlier graders (json.dumps) must hold: every recorded snapshot, and text
    # beyond ASCII, escapes and numbers of every kind a daemon reports.
    def old(body: object) -> str:
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    recorded = sorted(GOLDEN.glob("*/snapshot.json")) + sorted(ROOT.glob("tests/recorded/*/*@*.json"))
    assert len(recorded) > 40
    samples = [Snapshot.from_json(path.read_text()).model_dump(mode="json") for path in recorded]
    samples.append({"é": 'ü\u0000\n\t"\\/\u2028\U0001f600', "b": [0, -1, 2**63 - 1, 2**64 - 1, 0.5, 1.25, 0.001]})
    for body in samples:
        assert canonical(body) == old(body)


def test_a_snapshots_quick_dump_is_its_dump() -> None:
    # Digests are checked on Snapshot.dumped, which gives the untyped inspect JSON as it was
    # read: over every recorded snapshot and ones with the watch's parts (gone containers,
    # events), empty or not, and coerced fields, it is model_dump, key for key and in JSON.
    recorded = sorted(GOLDEN.glob("*/snapshot.json")) + sorted(ROOT.glob("tests/recorded/*/*@*.json"))
    snapshots = [Snapshot.from_json(path.read_text()) for path in recorded]
    odd = {"grader_version": "1", "taken_at": "2026-01-01T00:00:00", "engine": {"ID": "x", "n": [1.5, None, True]}}
    watched = {"ephemeral": [{"Id": "c", "Name": "/web"}], "timeline": [{"time": "t", "type": "container"}]}
    snapshots.append(Snapshot.model_validate({**odd, "timeline": [], "probes": {"p": {**PROBE, "data": {}}}}))
    snapshots.append(Snapshot.model_validate({**odd, **watched, "timings": {"a": 1}, "probes": {"p": PROBE}}))
    for snapshot in snapshots:
        assert snapshot.dumped() == snapshot.model_dump()
        assert canonical(snapshot.dumped()) == canonical(snapshot.model_dump(mode="json"))


def test_a_bundle_whose_json_is_not_its_models_is_verified_on_its_model(tmp_path: Path) -> None:
    # Digests are checked on the JSON as sent (what a grader writes) and, when that differs, on
    # the model: a probe's "error": null left out (its default) changes neither digest.
    path = submit(tmp_path, "networks-typo")
    probes = json.loads(path.read_text())["snapshot"]["probes"]
    plain = next(key for key, probe in probes.items() if probe["error"] is None)
    edit(path, lambda body: body["snapshot"]["probes"][plain].pop("error"))
    assert read(path).snapshot.probes[plain].error is None
    edit(path, lambda body: body["snapshot"]["probes"][plain].update(ok=not body["snapshot"]["probes"][plain]["ok"]))
    with pytest.raises(BundleError, match="the snapshot does not match its digest"):
        read(path)


def test_a_bundle_sealed_over_other_json_than_its_models_is_refused(tmp_path: Path) -> None:
    # Digests recomputed over JSON that leaves a default out: the model the store keeps says
    # "error": null, so its snapshot would not match the digest it is stored under.
    path = submit(tmp_path, "networks-typo")
    probes = json.loads(path.read_text())["snapshot"]["probes"]
    plain = next(key for key, probe in probes.items() if probe["error"] is None)
    forge(path, lambda body: body["snapshot"]["probes"][plain].pop("error"))
    with pytest.raises(BundleError, match="the snapshot does not match its digest"):
        read(path)


def test_importing_twice_skips(db_url: str, tmp_path: Path) -> None:
    path = submit(tmp_path, "networks-reference")
    copy = tmp_path / "copy.json.gz"
    copy.write_bytes(gzip.compress(path.read_bytes()))
    assert len(import_bundles([path], db_url=db_url).imported) == 1
    again = import_bundles([path, copy], db_url=db_url)
    assert (again.imported, len(again.skipped), again.failed) == ([], 2, [])
    assert "already imported (ani, snapshot" in again.skipped[0]
    assert len(Store(db_url).attempts()) == 1


def _import_when_told(go: multiprocessing.synchronize.Event, files: list[Path], db_url: str) -> None:
    go.wait(60)
    import_bundles(files, db_url=db_url)


def test_concurrent_imports_store_a_bundle_once(db_url: str, tmp_path: Path) -> None:
    """Six processes import the same three students' bundles at the same moment."""
    files = [submit(tmp_path, "networks-reference", s, f"{s}.json") for s in ("ani", "budi", "cici")]
    Store(db_url)
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    order = [files, files[::-1], files[1:] + files[:1]] * 2
    workers = [context.Process(target=_import_when_told, args=(go, f, db_url)) for f in order]
    for w in workers:
        w.start()
    go.set()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * 6
    assert sorted(a.student for a in Store(db_url).attempts()) == ["ani", "budi", "cici"]


def test_student_edited_scores_are_not_trusted(db_url: str, tmp_path: Path) -> None:
    """Full marks written into the bundle's outcome (and the bundle digest recomputed): the
    snapshot is scored again and the real score stored."""

    def full_marks(body: dict) -> None:
        for check in body["outcome"]["checks"]:
            check.update(status="passed", points=check["max_points"], message="ok")

    path = edit(submit(tmp_path, "networks-typo"), full_marks, reseal=True)
    assert all(c.passed for c in read(path).outcome.checks)
    import_bundles([path], db_url=db_url)
    [attempt] = Store(db_url).attempts()
    real = evaluate(load("docker-networks"), read(path).snapshot)
    assert attempt.score == real.score < real.max_score and attempt.checks == real.checks


def test_the_instructors_rubric_scores(db_url: str, tmp_path: Path) -> None:
    source = (ROOT / "rubrics" / "docker-networks.yaml").read_text()
    fixed = tmp_path / "docker-networks.yaml"
    fixed.write_text(source.replace('version: "1"', 'version: "9"', 1).replace("points: 2", "points: 3"))
    path = submit(tmp_path, "networks-reference")
    done = import_bundles([path], rubric_ref=str(fixed), db_url=db_url)
    [attempt] = Store(db_url).attempts()
    assert attempt.rubric_digest == load(fixed).digest != read(path).rubric.digest
    assert attempt.score == attempt.max_score > read(path).outcome.max_score
    assert done.imported == [f"{path}: ani {attempt.score:g}/{attempt.max_score:g} (identity not verified)"]


def _probe_output(body: dict) -> None:
    probe = next(iter(body["snapshot"]["probes"].values()))
    probe["output"] += "PONG"


def _probe_data(body: dict, value: object) -> None:
    next(iter(body["snapshot"]["probes"].values()))["data"]["n"] = value


BAD = {
    "png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64)), "not a submission bundle (not JSON"),
    "random-json": (
        lambda p: p.write_text('{"score": 100}'),
        "not a submission bundle (no 'grader-submission' marker)",
    ),
    "json-list": (lambda p: p.write_text("[1, 2]"), "no 'grader-submission' marker"),
    "empty": (lambda p: p.write_bytes(b""), "not JSON, or truncated"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:5000]), "not JSON, or truncated"),
    "truncated-gz": (lambda p: p.write_bytes(gzip.compress(p.read_bytes())[:3000]), "not JSON, or truncated"),
    "corrupt-gz": (lambda p: p.write_bytes(b"\x1f\x8b" + bytes(100)), "not JSON, or truncated"),
    "newer": (
        lambda p: edit(p, lambda b: b.update(version=3)),
        "bundle format version 3; this grader reads versions 1 and 2",
    ),
    "invalid": (
        lambda p: edit(p, lambda b: b.pop("snapshot"), reseal=True),
        "invalid bundle: snapshot: Field required",
    ),
    "rubric-path": (
        lambda p: edit(p, lambda b: b["rubric"].update(id="/etc/passwd"), reseal=True),
        "invalid bundle: rubric.id: String should match pattern",
    ),
    "unknown-rubric": (
        lambda p: edit(p, lambda b: b["rubric"].update(id="docker-swarm"), reseal=True),
        "unknown rubric 'docker-swarm'",
    ),
    "tampered-probe": (lambda p: edit(p, _probe_output), "the snapshot does not match its digest"),
    "tampered-resealed": (lambda p: edit(p, _probe_output, reseal=True), "the snapshot does not match its digest"),
    "edited-score": (
        lambda p: edit(p, lambda b: b["outcome"]["checks"][0].update(points=99)),
        "the bundle does not match its digest",
    ),
    "missing": (lambda p: p.unlink(), "cannot read: No such file or directory"),
    "nan": (lambda p: edit(p, lambda b: _probe_data(b, float("nan"))), "not JSON, or truncated"),
    "huge-integer": (lambda p: edit(p, lambda b: _probe_data(b, 2**70)), "an integer of more than 64 bits"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_one_line_and_changes_nothing(db_url: str, tmp_path: Path, case: str) -> None:
    good = submit(tmp_path, "networks-reference", student="budi", name="good.json")
    import_bundles([good], db_url=db_url)
    before = Store(db_url).attempts()
    damage, message = BAD[case]
    bad = submit(tmp_path, "networks-typo", name=f"{case}.json")
    damage(bad)

    result = run_import(str(bad), "--db", db_url)

    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"grader: {bad}: ") and message in line, line
    assert result.stdout == "imported 0, skipped 0, failed 1\n"
    assert Store(db_url).attempts() == before


def test_good_files_are_imported_next_to_bad_ones(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    good = submit(tmp_path, "networks-reference")
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    result = run_import(str(bad), str(good), str(good), "--db", db)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == "imported 1, skipped 1, failed 1"
    assert [a.student for a in Store(db).attempts()] == ["ani"]


def test_a_bundle_of_another_rubric_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    path = submit(tmp_path, "links-reference")
    result = run_import(str(path), "--rubric", "docker-networks", "--db", db)
    assert result.exit_code == 1
    assert f"{path}: a bundle of rubric 'docker-links', not 'docker-networks'" in result.stderr
    assert Store(db).attempts() == []


def test_submit_with_task_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--task", "2", "--submit", str(tmp_path / "b.json")])
    assert result.exit_code == 2 and "--submit hands in the whole lab" in result.stderr
    assert not (tmp_path / "b.json").exists()


def _taken(moment: datetime):
    def change(body: dict) -> None:
        body["snapshot"]["taken_at"] = moment.isoformat(timespec="seconds")

    return change


def test_a_forged_name_and_date_are_refused(db_url: str, tmp_path: Path) -> None:
    """ani's bundle renamed to budi and dated 2099, both digests resealed: without the course
    secret the name cannot be checked, but the date is refused (it would have outranked every
    later grade of budi's); nothing is stored."""

    def as_budi_in_2099(body: dict) -> None:
        body["student"] = "budi"
        _taken(datetime(2099, 1, 1, tzinfo=UTC))(body)

    path = forge(submit(tmp_path, "networks-reference"), as_budi_in_2099)
    result = run_import(str(path), "--db", db_url)
    assert result.exit_code == 1
    assert result.stderr == (
        f"grader: {path}: claims its daemon was inspected at 2099-01-01T00:00:00+00:00, after this import\n"
    )
    assert Store(db_url).attempts() == []


def test_an_import_never_outranks_a_later_live_grade(db_url: str, tmp_path: Path) -> None:
    """A bundle whose clock runs 4 minutes ahead is imported, at the time of its import; budi's
    live grade made after it is his latest attempt, whatever the bundle claims."""
    ahead = forge(submit(tmp_path, "networks-typo", student="budi"), _taken(datetime.now(UTC) + timedelta(minutes=4)))
    assert len(import_bundles([ahead], db_url=db_url).imported) == 1
    store = Store(db_url)
    rubric = load("docker-networks")
    snapshot = Snapshot.from_json((GOLDEN / "networks-reference" / "snapshot.json").read_text())
    store.record("budi", rubric, snapshot, evaluate(rubric, snapshot), "grade")
    imported, live = store.attempts()
    assert (imported.source, live.source) == ("import", "grade") and imported.graded_at <= live.graded_at
    assert standing("budi", [imported, live], "final").latest == live
    assert store.snapshot(imported.snapshot_digest).taken_at == read(ahead).snapshot.taken_at  # kept as claimed


def gzip_bomb() -> bytes:
    """A valid gzip of 4 GiB of zeros (4 MB), made in milliseconds: after a full flush, the
    deflate blocks of each MiB of zeros are the same bytes, so one is repeated."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    mib = bytes(1 << 20)
    first = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(mib) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = deflate.flush()[:-8]  # the final block, without the trailer of 2 MiB
    crc = 0xD202EF8D  # zlib.crc32(bytes(4 << 30)), computed once (it takes a second)
    return first + again * 4095 + last + struct.pack("<II", crc, (4 << 30) & 0xFFFFFFFF)


def test_a_gzip_bomb_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip_bomb())
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(
            BundleError, match=r"bomb.json.gz: not a submission bundle \(decompresses to more than 64 MB"
        ):
            read(bomb)
        seconds, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Before: gzip.decompress asked for the 4 GB (a MemoryError after 19 s under an 8 GB limit).
    assert seconds < 5 and peak < MAX_JSON + (16 << 20), (seconds, peak)


def test_json_of_a_million_tiny_values_is_refused_before_parsing(tmp_path: Path) -> None:
    """64 MB of `{},` from a 64 KB file: parsed, 2 GB of dicts."""
    path = tmp_path / "objects.json.gz"
    path.write_bytes(gzip.compress(b"[" + b"{}," * (MAX_JSON // 3 - 1) + b"{}]"))
    with pytest.raises(BundleError, match=r"more than 1,000,000 JSON values"):
        read(path)


def test_deep_json_is_one_line_and_the_next_file_is_imported(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'class.db'}"
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)  # before: a RecursionError ended the import
    good = submit(tmp_path, "networks-reference")
    result = run_import(str(deep), str(good), "--db", db)
    assert result.exit_code == 1
    assert result.stderr == f"grader: {deep}: not a submission bundle (JSON nested more than 200 levels deep)\n"
    assert result.stdout.splitlines()[-1] == "imported 1, skipped 0, failed 1"


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    """A FIFO (no writer: opening it would wait forever), /dev/zero (endless) and a folder are
    one line each, at once; the bundle after them is imported. In a child process, so that a
    regression fails on the timeout instead of hanging the tests."""
    fifo = tmp_path / "lab2.json"
    os.mkfifo(fifo)
    good = submit(tmp_path, "networks-reference")
    db = f"sqlite:///{tmp_path / 'class.db'}"
    files = [str(fifo), "/dev/zero", str(tmp_path), str(good)]
    done = subprocess.run(
        [sys.executable, "-m", "grader.cli", "import", *files, "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"grader: {fifo}: not a submission bundle (a FIFO)",
        "grader: /dev/zero: not a submission bundle (a device)",
        f"grader: {tmp_path}: not a submission bundle (a directory)",
    ]
    assert done.stdout.splitlines()[-1] == "imported 1, skipped 0, failed 3"


def test_a_file_over_16_mb_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "video.json"
    with path.open("wb") as file:
        file.truncate(1 << 30)  # sparse: 1 GB on paper, nothing on disk
    with pytest.raises(BundleError, match=r"not a submission bundle \(larger than 16 MB\)"):
        read(path)


def _first_container(body: dict) -> dict:
    return body["snapshot"]["containers"][0]


MALFORMED = {
    "config-list": (
        lambda b: _first_container(b).update(Config=[]),
        "containers.0.Config: Input should be a valid dictionary",
    ),
    "state-string": (
        lambda b: _first_container(b).update(State="running"),
        "containers.0.State: Input should be a valid dictionary",
    ),
    "networks-list": (
        lambda b: _first_container(b)["NetworkSettings"].update(Networks=[]),
        "containers.0.NetworkSettings.Networks: Input should be a valid dictionary",
    ),
    "name-int": (lambda b: _first_container(b).update(Name=5), "containers.0.Name: Input should be a valid string"),
    "cmd-string": (
        lambda b: _first_container(b)["Config"].update(Cmd="redis-server"),
        "containers.0.Config.Cmd: Input should be a valid list",
    ),
    "no-id": (lambda b: _first_container(b).pop("Id"), "containers.0.Id: Field required"),
    "links-dict": (
        lambda b: _first_container(b)["HostConfig"].update(Links={"redis": "r"}),
        "containers.0.HostConfig.Links: Input should be a valid list",
    ),
    "network-driver": (
        lambda b: b["snapshot"]["networks"][0].update(Driver=None),
        "networks.0.Driver: Input should be a valid string",
    ),
    "repo-tags": (
        lambda b: b["snapshot"]["images"][0].update(RepoTags="redis"),
        "images.0.RepoTags: Input should be a valid list",
    ),
    "engine-id-nul": (  # PostgreSQL refuses NUL in text: the import would stop at it
        lambda b: b["snapshot"]["engine"].update(ID="5d7e\x00"),
        "engine.ID: String should match pattern '^[^\\x00-\\x1f\\x7f]*$'",
    ),
    "probe-entries": (
        lambda b: next(iter(b["snapshot"]["probes"].values()))["data"].update(entries=[1]),
        ".data.entries.0: Input should be a valid list",
    ),
    # Every other field the report or an export reads, forged the same way.
    "engine-version": (
        lambda b: b["snapshot"]["engine"].update(Version=[28]),
        "engine.Version: Input should be a valid string",
    ),
    "engine-api": (
        lambda b: b["snapshot"]["engine"].update(ApiVersion=1.41),
        "engine.ApiVersion: Input should be a valid string",
    ),
    "engine-negotiated": (
        lambda b: b["snapshot"]["engine"].update(NegotiatedApiVersion={}),
        "engine.NegotiatedApiVersion: Input should be a valid string",
    ),
    "image-int": (
        lambda b: _first_container(b)["Config"].update(Image=1),
        "containers.0.Config.Image: Input should be a valid string",
    ),
    "running-string": (
        lambda b: _first_container(b)["State"].update(Running="yes"),
        "containers.0.State.Running: Input should be a valid boolean",
    ),
    "aliases-string": (
        lambda b: next(iter(_first_container(b)["NetworkSettings"]["Networks"].values())).update(Aliases="db"),
        "Aliases: Input should be a valid list",
    ),
    "ip-int": (
        lambda b: next(iter(_first_container(b)["NetworkSettings"]["Networks"].values())).update(IPAddress=1),
        "IPAddress: Input should be a valid string",
    ),
    "network-name": (
        lambda b: b["snapshot"]["networks"][0].update(Name=None),
        "networks.0.Name: Input should be a valid string",
    ),
    # What the mount, published_port, network, attached and container kinds read.
    "mounts": (
        lambda b: _first_container(b).update(Mounts="/data"),
        "containers.0.Mounts: Input should be a valid list",
    ),
    "mount-rw": (
        lambda b: _first_container(b).update(Mounts=[{"Destination": "/data", "RW": "no"}]),
        "containers.0.Mounts.0.RW: Input should be a valid boolean",
    ),
    "tmpfs": (
        lambda b: _first_container(b)["HostConfig"].update(Tmpfs=["/run"]),
        "containers.0.HostConfig.Tmpfs: Input should be a valid dictionary",
    ),
    "host-ip": (
        lambda b: _first_container(b)["HostConfig"].update(PortBindings={"80/tcp": [{"HostIp": 0, "HostPort": "81"}]}),
        "HostIp: Input should be a valid string",
    ),
    "static-ip": (
        lambda b: next(iter(_first_container(b)["NetworkSettings"]["Networks"].values())).update(
            IPAMConfig={"IPv4Address": 10}
        ),
        "IPAMConfig.IPv4Address: Input should be a valid string",
    ),
    "network-internal": (
        lambda b: b["snapshot"]["networks"][0].update(Internal="yes"),
        "networks.0.Internal: Input should be a valid boolean",
    ),
    "network-labels": (
        lambda b: b["snapshot"]["networks"][0].update(Labels={"tier": 1}),
        "networks.0.Labels.tier: Input should be a valid string",
    ),
    "network-subnets": (
        lambda b: b["snapshot"]["networks"][0].update(IPAM={"Config": "172.30.0.0/24"}),
        "networks.0.IPAM.Config: Input should be a valid list",
    ),
    "probe-output": (
        lambda b: next(iter(b["snapshot"]["probes"].values())).update(output=["PONG"]),
        ".output: Input should be a valid string",
    ),
    "probe-duration": (
        lambda b: next(iter(b["snapshot"]["probes"].values())).update(duration="fast"),
        ".duration: Input should be a valid number, unable to parse string as a number",
    ),
    "taken-at": (lambda b: b["snapshot"].update(taken_at="yesterday"), "Invalid isoformat string: 'yesterday'"),
    # The watch's: containers gone since, and the daemon's events (the report's tables of them).
    "timeline-empty": (lambda b: b["snapshot"].update(timeline=[{}]), "timeline.0.time: Field required"),
    "timeline-int": (lambda b: b["snapshot"].update(timeline=[1]), "timeline.0: Input should be a valid dictionary"),
    "timeline-name": (
        lambda b: b["snapshot"].update(timeline=[{**EVENT, "name": 5}]),
        "timeline.0.name: Input should be a valid string",
    ),
    "seen-empty": (lambda b: b["snapshot"].update(ephemeral=[{}]), "ephemeral.0.Id: Field required"),
    "seen-name": (
        lambda b: b["snapshot"].update(ephemeral=[{**_first_container(b), "Name": 5}]),
        "ephemeral.0.Name: Input should be a valid string",
    ),
    "seen-state": (
        lambda b: b["snapshot"].update(ephemeral=[{**_first_container(b), "State": "exited"}]),
        "ephemeral.0.State: Input should be a valid dictionary",
    ),
    "seen-exit-code": (
        lambda b: b["snapshot"].update(ephemeral=[{**_first_container(b), "State": {"ExitCode": "0"}}]),
        "ephemeral.0.State.ExitCode: Input should be a valid integer",
    ),
}
EVENT = {"time": "2026-11-02T09:00:00.000+00:00", "type": "container", "action": "start", "name": "boring_aryabhata"}


def test_malformed_evidence_is_refused_the_rest_imported_and_reported(tmp_path: Path) -> None:
    """Resealed bundles whose inspect JSON has the wrong shape (it would break the checks and
    the report): each is one line naming the file and the field; the good bundle in the same
    folder is imported and the report is written."""
    db = f"sqlite:///{tmp_path / 'class.db'}"
    folder = tmp_path / "submissions"
    folder.mkdir()
    submit(folder, "networks-reference", student="budi", name="budi.json")
    bad = {
        case: forge(submit(folder, "networks-typo", name=f"{case}.json"), change)
        for case, (change, _) in MALFORMED.items()
    }

    result = run_import(*sorted(str(p) for p in folder.iterdir()), "--db", db)

    assert result.exit_code == 1
    lines = {line.split(": ", 2)[1]: line for line in result.stderr.splitlines()}
    assert sorted(lines) == sorted(str(p) for p in bad.values())
    for case, (_, message) in MALFORMED.items():
        line = lines[str(bad[case])]
        assert line.startswith(f"grader: {bad[case]}: invalid bundle: snapshot") and line.endswith(message), line
    assert result.stdout.splitlines()[-1] == f"imported 1, skipped 0, failed {len(MALFORMED)}"
    assert [a.student for a in Store(db).attempts()] == ["budi"]
    report = CliRunner().invoke(main, ["report", "--db", db, "--out", str(tmp_path / "site")])
    assert report.exit_code == 0, report.output


def test_a_watchs_fields_are_imported_and_reported(tmp_path: Path) -> None:
    """A snapshot with what ``check --watch`` keeps (a container gone since, with its exit code,
    and the daemon's events, as the watch writes them) is a valid bundle: it imports and its
    attempt page shows both."""
    db = f"sqlite:///{tmp_path / 'class.db'}"

    def watched(body: dict) -> None:
        gone = {**_first_container(body), "State": {"Status": "exited", "Running": False, "ExitCode": 0}}
        body["snapshot"].update(ephemeral=[gone], timeline=[EVENT, {**EVENT, "action": "die"}])

    bundle = forge(submit(tmp_path, "networks-typo"), watched)
    assert run_import(str(bundle), "--db", db).exit_code == 0
    report = CliRunner().invoke(main, ["report", "--db", db, "--out", str(tmp_path / "site")])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "site" / "attempts" / "1.html").read_text()
    assert "<td>die</td>" in page and "exited (0)" in page


def test_a_bundle_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Saved by an editor that writes UTF-8's byte order mark first (Notepad), plain or gzipped."""
    plain = submit(tmp_path, "networks-typo")
    text = plain.read_bytes()
    plain.write_bytes(b"\xef\xbb\xbf" + text)
    packed = tmp_path / "ani.json.gz"
    packed.write_bytes(gzip.compress(b"\xef\xbb\xbf" + text))
    assert read(plain).student == read(packed).student == "ani"


def test_a_bundle_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """check --submit to a full disk (/dev/full): a usage error naming the file, no traceback."""
    rubric, snapshot = (
        load("docker-networks"),
        Snapshot.from_json((GOLDEN / "networks-typo" / "snapshot.json").read_text()),
    )
    graded = Graded("ani", rubric, snapshot, evaluate(rubric, snapshot), snapshot.taken_at)
    with pytest.raises(UsageError, match=r"^cannot write /dev/full: No space left on device$"):
        write(graded, Path("/dev/full"))


@pytest.mark.docker
def test_check_submit_then_import_on_the_bench(networks_lab: BenchDaemon, tmp_path: Path) -> None:
    """A student checks the played lab 2 and submits with her key; the instructor imports into
    another store with the course secret and gets the same result, scored by the grader's own
    rubric, from a verified sender."""
    roster, secret = tmp_path / "class.csv", tmp_path / "course.key"
    roster.write_text("student\nani\n")
    key = CliRunner().invoke(main, ["keys", str(roster), "--secret", str(secret)]).stdout.splitlines()[1].split(",")[1]
    bundle = tmp_path / "lab2.json.gz"
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--rubric",
            "docker-networks",
            "--format",
            "json",
            "--docker-host",
            networks_lab.host,
            "--db",
            f"sqlite:///{tmp_path / 'student.db'}",
            "--submit",
            str(bundle),
        ],
        env={"GRADER_STUDENT": "ani", "GRADER_KEY": key},
    )
    assert result.exit_code == 0, result.output
    checked = json.loads(result.stdout)
    assert result.stderr == f"submission bundle written to {bundle}, sealed with ani's key\n"

    instructor = f"sqlite:///{tmp_path / 'class.db'}"
    imported = run_import(str(bundle), "--secret", str(secret), "--db", instructor)

    assert imported.exit_code == 0, imported.output
    assert imported.stdout.splitlines()[-1] == "imported 1, skipped 0, failed 0"
    [attempt] = Store(instructor).attempts()
    assert checked["student"] == "ani"
    assert (attempt.student, attempt.source, attempt.snapshot_digest, attempt.identity) == (
        "ani",
        "import",
        checked["snapshot_digest"],
        "verified",
    )
    assert attempt.score == attempt.max_score == checked["score"] == checked["max_score"] > 0
    assert [(c.id, c.status, c.points) for c in attempt.checks] == [
        (c["id"], c["status"], c["points"]) for c in checked["checks"]
    ]
    assert run_import(str(bundle), "--db", instructor).stdout.splitlines()[-1] == "imported 0, skipped 1, failed 0"
