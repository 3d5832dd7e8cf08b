"""The three lab images, built offline and cached.

``debootstrap`` makes one Debian rootfs with redis-server, redis-tools, busybox (its applets
installed, for alpine-like ``nslookup``/``wget``/``nc``/``ping``) and python3-minimal. It is
imported once as a base image; three tiny Dockerfiles on top give the names the labs use.
The saved tarball is cached (keyed by the build inputs), so later runs only ``docker load``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .daemon import BenchDaemon
from .system import run

HERE = Path(__file__).parent / "images"
CACHE = Path(os.environ.get("GRADER_BENCH_CACHE", "/var/cache/grader-bench"))
SUITE = "bookworm"
INCLUDE = "redis-server,redis-tools,busybox,python3-minimal"
BASE = "grader-bench/base:latest"
# tag -> build context folder
IMAGES = {
    "redis:latest": "redis",
    "alpine:latest": "alpine",
    "katacoda/redis-node-docker-example:latest": "app",
}
TRIM = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
]


def _key() -> str:
    h = hashlib.sha256(f"{SUITE}|{INCLUDE}|{TRIM}".encode())
    for path in sorted(HERE.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(HERE)).encode() + path.read_bytes())
    return h.hexdigest()[:16]


def rootfs_tar() -> Path:
    """The debootstrapped rootfs as a tar, built once (about 40 s) and cached."""
    target = CACHE / f"rootfs-{SUITE}-{hashlib.sha256(f'{INCLUDE}|{TRIM}'.encode()).hexdigest()[:12]}.tar"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "rootfs"
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={INCLUDE}",
            SUITE,
            str(root),
            timeout=900,
        )
        run("chroot", str(root), "/bin/busybox", "--install", "-s")
        for rel in TRIM:
            shutil.rmtree(root / rel, ignore_errors=True)
        partial = target.with_suffix(".partial")
        run("tar", "-C", str(root), "-cf", str(partial), ".", timeout=600)
        partial.rename(target)
    return target


def images_tar(builder: BenchDaemon) -> Path:
    """The saved lab images; built in ``builder`` (a bench daemon) when not cached."""
    target = CACHE / f"lab-images-{_key()}.tar"
    if target.exists():
        return target
    base = rootfs_tar()
    with open(base, "rb") as tar:
        subprocess.run(
            ["docker", "-H", builder.host, "import", "-", BASE],
            stdin=tar,
            check=True,
            capture_output=True,
        )
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # Debian's engine has no BuildKit frontend here
    for tag, folder in IMAGES.items():
        subprocess.run(
            ["docker", "-H", builder.host, "build", "-q", "-t", tag, str(HERE / folder)],
            check=True,
            capture_output=True,
            env=env,
        )
    builder.docker("rmi", BASE)
    partial = target.with_suffix(".partial")
    builder.docker("save", "-o", str(partial), *IMAGES, timeout=600)
    partial.rename(target)
    for old in CACHE.glob("lab-images-*.tar"):
        if old != target:
            old.unlink()
    return target


def load_images(daemon: BenchDaemon, tar: Path) -> None:
    daemon.docker("load", "-q", "-i", str(tar), timeout=600)
