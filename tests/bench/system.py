"""Host prerequisites of the bench: Debian packages and small process helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PACKAGES = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "nsenter": "util-linux",
    "unshare": "util-linux",  # unshare and pivot_root: the 28.5 engine's launcher (engines.py)
    "pivot_root": "util-linux",
    "ip": "iproute2",
    "openssl": "openssl",
    "sshd": "openssh-server",
}


def ensure_packages() -> None:
    """Install Debian's docker.io / debootstrap when their commands are missing."""
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"the bench needs root to install {', '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def run(
    *args: str, check: bool = True, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, input=input, text=True, capture_output=True, timeout=timeout)


def read_only(folder: Path, *command: str) -> list[str]:
    """``command`` run with ``folder`` mounted read-only, in a mount namespace of its own: root
    ignores file modes, not a read-only mount."""
    mount = f'mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", *command]
