"""A private dockerd in a network namespace of its own: the bench's "student machine".

Each daemon has its own socket, data root, exec root and pid file, and lives in a network
namespace with only loopback, so nothing it runs can reach beyond the machine. ``engine``
says which Docker it runs (engines.py: Debian's 20.10 on the host, or 28.5 inside a forky
rootfs). A run that was killed leaves stale state behind; ``start`` cleans it up first, its
own and that of any daemon whose owner (the process that started it) is gone. ``stop``
removes everything but the log.

With ``tls=True`` the daemon is also a machine on a network: a veth pair links the host to
its namespace on a /30 of 10.213.0.0/16, and dockerd listens there on TCP port 2376 with
mutual TLS (``tcp_host``, ``tls_files``), as a student's engine set up for remote access.
The namespace then reaches the host's end of that veth too, and still nothing beyond: it has
no default route.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from grader.sandbox import pid_alive

from .engines import DEFAULT, dockerd_command
from .system import run
from .tls import TlsFiles, make_tls

STATE_ROOT = Path(os.environ.get("GRADER_BENCH_STATE", "/var/lib/grader-bench"))
RUN_ROOT = Path("/run/grader-bench")
LINK_NET = IPv4Network("10.213.0.0/16")
TLS_PORT = 2376


@dataclass
class BenchDaemon:
    name: str
    engine: str = DEFAULT
    tls: bool = False
    address: IPv4Address | None = field(default=None, init=False)
    """The namespace's end of the veth (``tls=True``, once started)."""
    tls_files: TlsFiles | None = field(default=None, init=False, repr=False)
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
    def owner_file(self) -> Path:
        """The pid of the process that started this daemon, for ``sweep_stale``."""
        return STATE_ROOT / f"{self.name}.owner"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tcp_host(self) -> str:
        if self.address is None:
            raise RuntimeError(f"bench daemon {self.name} has no TCP listener: start it with tls=True")
        return f"tcp://{self.address}:{TLS_PORT}"

    @property
    def veth(self) -> str:
        """The host's end of the veth: unique per name and within IFNAMSIZ (15 characters)."""
        return f"gb{self._digest[:12]}"

    @property
    def _digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 60) -> BenchDaemon:
        sweep_stale()
        self.cleanup()
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        self.owner_file.write_text(str(os.getpid()))  # first: another session's sweep spares it
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        run("ip", "netns", "add", self.netns)
        self.nsenter("ip", "link", "set", "lo", "up")
        api_options = ["--host", self.host]
        if self.tls:
            self.address = self._link_to_host()
            self.tls_files = files = make_tls(self.run_dir / "tls", str(self.address))
            api_options += ["--host", self.tcp_host, "--tlsverify", "--tlscacert", str(files.ca)]
            api_options += ["--tlscert", str(files.server_cert), "--tlskey", str(files.server_key)]
        command = dockerd_command(self.engine, self.netns_path, self.run_dir, self.data_root)
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    *command,
                    *api_options,
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
        self.cleanup()

    def cleanup(self) -> None:
        """Remove whatever a killed run left: processes, mounts, namespace, files (the log stays)."""
        pid = self._pid()
        if pid and pid_alive(pid) and self._is_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if Path(self.netns_path).exists():
            for line in run("ip", "netns", "pids", self.netns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(line), signal.SIGKILL)
            time.sleep(0.2)
        self._unmount_below(self.run_dir, self.data_root)
        run("ip", "link", "del", self.veth, check=False)  # deleting the namespace would take it too, unless busy
        if Path(self.netns_path).exists():
            run("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.data_root, ignore_errors=True)
        self.owner_file.unlink(missing_ok=True)

    def _pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            # nsenter (and 28.5's launcher) exec dockerd, so the child's pid is dockerd's own.
            return self._proc.pid
        with contextlib.suppress(OSError, ValueError):
            return int(self.pidfile.read_text().strip())
        return None

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is this daemon's dockerd: a stale pid file's pid may belong to any
        process by now."""
        try:
            return str(self.socket) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    def _link_to_host(self) -> IPv4Address:
        """A veth pair from the host into the namespace, on a /30 no host interface uses yet."""
        with open(RUN_ROOT / "link.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # other sessions pick their /30 at the same time
            host_ip, ns_ip = self._free_subnet().hosts()
            run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
            run("ip", "addr", "add", f"{host_ip}/30", "dev", self.veth)
        run("ip", "link", "set", self.veth, "up")
        self.nsenter("ip", "addr", "add", f"{ns_ip}/30", "dev", "eth0")
        self.nsenter("ip", "link", "set", "eth0", "up")
        return ns_ip

    def _free_subnet(self) -> IPv4Network:
        """The first /30 from one picked by the name's hash that overlaps no host address
        (other daemons', leftovers of killed runs, the machine's own networks)."""
        lines = run("ip", "-4", "-o", "addr", "show").stdout.splitlines()
        used = [IPv4Interface(line.split()[3]).network for line in lines]
        count = LINK_NET.num_addresses // 4
        first = int(self._digest, 16) % count
        for i in range(count):
            subnet = IPv4Network((LINK_NET.network_address + 4 * ((first + i) % count), 30))
            if not any(subnet.overlaps(net) for net in used):
                return subnet
        raise RuntimeError(f"no free /30 left in {LINK_NET}")

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


def sweep_stale() -> None:
    """Clean up the daemons of runs that ended without stopping them (killed, or the machine
    restarted): only those whose owner process is gone, never a live session's. A daemon
    started before owners were recorded has none and is left alone."""
    for owner in STATE_ROOT.glob("*.owner"):
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue  # being written, or removed meanwhile
        if not pid_alive(pid):
            BenchDaemon(owner.name.removesuffix(".owner")).cleanup()
