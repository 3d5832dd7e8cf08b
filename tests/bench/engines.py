"""The Docker engines the bench runs, as the students' machines run different ones.

``20.10`` is Debian bookworm's docker.io, installed on the host (API 1.41). ``28.5`` is Debian
forky's docker.io 28.5.2 (API 1.51) from a debootstrapped forky rootfs, built on first use and
cached. Its runc and tini need a newer glibc than the host's, so that dockerd runs inside the
rootfs: in a private mount namespace the rootfs becomes the root (``pivot_root``; a plain
``chroot`` would put the processes ``docker exec`` starts in the host's root), with the host
folders that hold the daemon's socket, pid file and data root bound at the same paths, so the
host's ``docker`` CLI and the SDK reach it as they reach 20.10.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from .rootfs import CACHE, TRIM, building, debootstrap

ENGINES = ("20.10", "28.5")
DEFAULT = "20.10"
FORKY = "forky"
# busybox-static: the applets of the bench's busybox-only probe image (images.py) come from here.
# docker-compose: Docker Compose v2 (2.40), the `docker compose` of every bench engine (compose_config).
FORKY_INCLUDE = "docker.io,iptables,busybox-static,docker-compose"
SID_SCRIPT = "/usr/share/debootstrap/scripts/sid"

# Run as `sh -c LAUNCH sh ROOTFS RUN_DIR DATA_ROOT DOCKERD-ARGS...` in the daemon's network
# namespace and a private mount namespace of its own (nothing mounted here reaches the host).
# The rootfs is read-only: several daemons, of several sessions, share the cached one. The
# data root's parent gets a tmpfs so the data root has a mount point without writing into the
# rootfs. Every step execs the next, so the launcher's pid is dockerd's.
LAUNCH = """set -eu
root=$1 run=$2 data=$3
shift 3
mount --bind "$root" "$root"
mkdir -p "$root/.old" "$root${data%/*}"
mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs tmpfs "$root${data%/*}"
mkdir -p "$root$run" "$root$data"
mount --bind "$run" "$root$run"
mount --bind "$data" "$root$data"
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
cd "$root"
pivot_root . .old
umount -l /.old
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin dockerd "$@"
"""


def forky_rootfs() -> Path:
    """The forky rootfs with docker.io 28.5, built once (about a minute) and cached."""
    key = hashlib.sha256(f"{FORKY}|{FORKY_INCLUDE}|{TRIM}".encode()).hexdigest()[:12]
    target = CACHE / f"engine-{FORKY}-{key}"
    with building(target):
        if target.is_dir():
            return target
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            root = Path(tmp) / "rootfs"
            debootstrap(root, FORKY, FORKY_INCLUDE, SID_SCRIPT)
            # containerd's "opt" plugin makes this folder at start; the rootfs is read-only then.
            (root / "opt" / "containerd").mkdir(parents=True, exist_ok=True)
            root.rename(target)
    return target


def dockerd_command(engine: str, netns_path: str, run_dir: Path, data_root: Path) -> list[str]:
    """The command that starts ``engine``'s dockerd in the namespace; dockerd's own options follow."""
    if engine == "20.10":
        return ["nsenter", f"--net={netns_path}", "dockerd"]
    if engine == "28.5":
        launcher = ["unshare", "--mount", "--propagation", "private", "sh", "-c", LAUNCH, "sh"]
        return ["nsenter", f"--net={netns_path}", *launcher, str(forky_rootfs()), str(run_dir), str(data_root)]
    raise ValueError(f"unknown engine {engine!r}: the bench runs {', '.join(ENGINES)}")


def busybox() -> Path:
    """A static busybox (forky's busybox-static): it runs in an image with nothing else."""
    return forky_rootfs() / "usr" / "bin" / "busybox"


def compose_config() -> Path:
    """A docker CLI config folder (``DOCKER_CONFIG``) whose ``cli-plugins`` holds forky's Docker
    Compose v2: with it the host's ``docker`` has ``docker compose``, against either engine (the
    plugin runs on the host's glibc). Bookworm has only Compose v1 (1.29, ``docker-compose``,
    Python), which ``docker compose`` is not."""
    plugin = forky_rootfs() / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-compose"
    folder = CACHE / f"docker-config-{hashlib.sha256(str(plugin).encode()).hexdigest()[:12]}"
    link = folder / "cli-plugins" / "docker-compose"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)  # dangling: its rootfs was rebuilt elsewhere
        link.symlink_to(plugin)
    return folder
