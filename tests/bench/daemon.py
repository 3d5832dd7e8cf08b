"""A private dockerd in a network namespace of its own: the bench's "student machine".

Each daemon has its own socket, data root, exec root and pid file, and lives in a network
namespace with only loopback, so nothing it runs can reach beyond the machine. A run that
was killed leaves stale state behind; ``start`` cleans it up first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .system import pid_alive, run

STATE_ROOT = Path(os.environ.get("GRADER_BENCH_STATE", "/var/lib/grader-bench"))
RUN_ROOT = Path("/run/grader-bench")


@dataclass
class BenchDaemon:
    name: str
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def netns(self) -> str:
        return f"grader-bench-{self.name}"

    @property
    def netns_path(self) -> str:
        return f"/var/run/netns/{self.netns}"

    @property
    def data_root(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.name

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "docker.pid"

    @property
    def log(self) -> Path:
        return STATE_ROOT / f"{self.name}.log"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 60) -> BenchDaemon:
        self.cleanup()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        run("ip", "netns", "add", self.netns)
        self.nsenter("ip", "link", "set", "lo", "up")
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    "nsenter",
                    f"--net={self.netns_path}",
                    "dockerd",
                    "--host",
                    self.host,
                    "--data-root",
                    str(self.data_root),
                    "--exec-root",
                    str(self.run_dir / "exec"),
                    "--pidfile",
                    str(self.pidfile),
                    "--log-level",
                    "warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dockerd {self.name} exited: {self.log.read_text()[-2000:]}")
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd {self.name} did not answer within {timeout}s")

    def stop(self) -> None:
        pid = self._pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while pid_alive(pid) and time.monotonic() < deadline:
                if self._proc is not None:
                    self._proc.poll()  # reap our own child so it stops being a zombie
                time.sleep(0.1)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        self.cleanup(remove_data=False)

    def cleanup(self, remove_data: bool = True) -> None:
        """Remove whatever a killed run left: processes, mounts, namespace, files."""
        pid = self._pid()
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if Path(self.netns_path).exists():
            for line in run("ip", "netns", "pids", self.netns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(line), signal.SIGKILL)
            time.sleep(0.2)
        self._unmount_below(self.run_dir, self.data_root)
        if Path(self.netns_path).exists():
            run("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if remove_data:
            shutil.rmtree(self.data_root, ignore_errors=True)

    def _pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            # nsenter execs dockerd, so the child's pid is dockerd's own.
            return self._proc.pid
        with contextlib.suppress(OSError, ValueError):
            return int(self.pidfile.read_text().strip())
        return None

    @staticmethod
    def _unmount_below(*roots: Path) -> None:
        prefixes = tuple(str(r) for r in roots)
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        for point in sorted((m for m in mounts if m.startswith(prefixes)), key=len, reverse=True):
            run("umount", "-l", point, check=False)

    # -- use ----------------------------------------------------------------------

    def nsenter(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a host command inside the daemon's network namespace."""
        return run("nsenter", f"--net={self.netns_path}", *args, check=check, timeout=timeout)

    def docker(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this daemon, exactly as a student types it."""
        return run("docker", "-H", self.host, *args, check=check, input=input, timeout=timeout)

    def reset(self) -> None:
        """Remove every container and user network; keep the images."""
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", "-v", *ids)
        nets = self.docker("network", "ls", "-q", "--filter", "type=custom").stdout.split()
        if nets:
            self.docker("network", "rm", *nets)
