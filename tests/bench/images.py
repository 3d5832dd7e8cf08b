"""The lab images, built offline and cached.

``debootstrap`` makes one Debian rootfs with redis-server, redis-tools, busybox (its applets
installed, for alpine-like ``nslookup``/``wget``/``nc``/``ping``) and python3-minimal. It is
imported once as a base image; three tiny Dockerfiles on top give the names the labs use.
That ``alpine`` is Debian: glibc, with ``getent``, as real Alpine has musl's. A second probe
image, ``alpine-busybox``, holds a static busybox and its applets and nothing else: what a
probe may rely on in any busybox image. The saved tarball is cached (keyed by the build
inputs), so later runs only ``docker load``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from . import engines
from .daemon import BenchDaemon
from .rootfs import CACHE, TRIM, building, debootstrap
from .system import run

HERE = Path(__file__).parent / "images"
SUITE = "bookworm"
INCLUDE = "redis-server,redis-tools,busybox,python3-minimal"
BASE = "grader-bench/base:latest"
# tag -> build context folder
IMAGES = {
    "redis:latest": "redis",
    "alpine:latest": "alpine",
    "katacoda/redis-node-docker-example:latest": "app",
    "nginx:latest": "nginx",
    "elasticsearch:2": "search",
}
BUSYBOX_IMAGE = "alpine-busybox:latest"
# Where Alpine puts busybox's applets; `busybox --install -s` links each into its own.
APPLET_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin")


def _key() -> str:
    h = hashlib.sha256(f"{SUITE}|{INCLUDE}|{TRIM}|{BUSYBOX_IMAGE}|{engines.FORKY_INCLUDE}".encode())
    for path in sorted(HERE.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(HERE)).encode() + path.read_bytes())
    return h.hexdigest()[:16]


def rootfs_tar() -> Path:
    """The debootstrapped rootfs as a tar, built once (about 40 s) and cached."""
    target = CACHE / f"rootfs-{SUITE}-{hashlib.sha256(f'{INCLUDE}|{TRIM}'.encode()).hexdigest()[:12]}.tar"
    with building(target):
        if target.exists():
            return target
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            root = Path(tmp) / "rootfs"
            debootstrap(root, SUITE, INCLUDE)
            run("chroot", str(root), "/bin/busybox", "--install", "-s")
            partial = target.with_suffix(".partial")
            run("tar", "-C", str(root), "-cf", str(partial), ".", timeout=600)
            partial.rename(target)
    return target


def _import_busybox_image(builder: BenchDaemon) -> None:
    """``alpine-busybox``: /bin/busybox, its applets linked where Alpine has them, and /tmp."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for folder in APPLET_DIRS:
            (root / folder).mkdir(parents=True)
        (root / "tmp").mkdir()
        (root / "tmp").chmod(0o1777)  # mktemp -d, as in Alpine
        (root / "bin" / "busybox").write_bytes(engines.busybox().read_bytes())
        (root / "bin" / "busybox").chmod(0o755)
        run("chroot", str(root), "/bin/busybox", "--install", "-s")
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], check=True, capture_output=True).stdout
    subprocess.run(
        ["docker", "-H", builder.host, "import", "-c", 'CMD ["/bin/sh"]', "-", BUSYBOX_IMAGE],
        input=tar,
        check=True,
        capture_output=True,
    )


_held: list[IO[str]] = []  # the lab-images tars this process uses, locked until it exits


def images_tar(builder: BenchDaemon) -> Path:
    """The saved lab images; built in ``builder`` (a bench daemon) when not cached. The tar
    stays locked as in use while this process runs: another session that builds newer images
    removes only the older tars no session uses."""
    target = CACHE / f"lab-images-{_key()}.tar"
    CACHE.mkdir(parents=True, exist_ok=True)
    use = open(target.with_suffix(".use"), "w")  # noqa: SIM115 - held until the process exits
    fcntl.flock(use, fcntl.LOCK_SH)
    _held.append(use)
    with building(target):
        if not target.exists():
            _build_images(builder, target)
    return target


def _remove_unused(keep: Path) -> None:
    for old in CACHE.glob("lab-images-*.tar"):
        if old == keep:
            continue
        with open(old.with_suffix(".use"), "w") as use:
            try:
                fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a running session loads daemons from it
            old.unlink()


def _build_images(builder: BenchDaemon, target: Path) -> None:
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
    _import_busybox_image(builder)
    partial = target.with_suffix(".partial")
    builder.docker("save", "-o", str(partial), *IMAGES, BUSYBOX_IMAGE, timeout=600)
    partial.rename(target)
    _remove_unused(target)


def load_images(daemon: BenchDaemon, tar: Path) -> None:
    daemon.docker("load", "-q", "-i", str(tar), timeout=600)
