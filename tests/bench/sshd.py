"""An ssh server on a bench daemon's machine, the way an instructor reaches a student's
engine with ``ssh://user@host``: Debian's sshd in the daemon's network namespace, listening
on its veth address, with a throwaway host key and client key. Its sessions talk to that
daemon (``SetEnv DOCKER_HOST``), so ``docker system dial-stdio`` over ssh reaches it.

``client_path`` is a folder with an ``ssh`` that uses this server's key and known host, to
put first on PATH: the docker SDK runs plain ``ssh``, as an instructor's configured one."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .daemon import BenchDaemon
from .system import run

PORT = 2222


class BenchSSH:
    def __init__(self, daemon: BenchDaemon):
        if daemon.address is None:
            raise RuntimeError("an ssh server needs a daemon started with tls=True (it has the veth)")
        self.daemon = daemon
        self.root = Path(tempfile.mkdtemp(prefix="grader-ssh-"))
        self.client_path = self.root / "bin"
        self.log = self.root / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"ssh://root@{self.daemon.address}:{PORT}"

    def start(self) -> BenchSSH:
        keys = {name: self.root / name for name in ("host_key", "client_key")}
        for key in keys.values():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        (self.root / "authorized_keys").write_text(Path(f"{keys['client_key']}.pub").read_text())
        host_key = Path(f"{keys['host_key']}.pub").read_text().split()
        (self.root / "known_hosts").write_text(f"[{self.daemon.address}]:{PORT} {host_key[0]} {host_key[1]}\n")
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {PORT}\nListenAddress {self.daemon.address}\nHostKey {keys['host_key']}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            f"PidFile {self.root / 'sshd.pid'}\nSetEnv DOCKER_HOST={self.daemon.host}\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.client_path.mkdir()
        wrapper = self.client_path / "ssh"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec /usr/bin/ssh -i {keys['client_key']} -o UserKnownHostsFile={self.root / 'known_hosts'} "
            '-o StrictHostKeyChecking=yes -o BatchMode=yes "$@"\n'
        )
        wrapper.chmod(0o755)
        self.proc = subprocess.Popen(
            ["nsenter", f"--net={self.daemon.netns_path}", shutil.which("sshd") or "/usr/sbin/sshd", "-D"]
            + ["-f", str(config), "-E", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = [str(wrapper), "-p", str(PORT), f"root@{self.daemon.address}", "true"]
            if subprocess.run(probe, capture_output=True).returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd for {self.daemon.name} did not answer")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)
