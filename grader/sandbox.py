"""A throwaway private Docker engine, for ``grader rubric test``: this machine's ``dockerd``
with a socket, data root, exec root and pid file of its own, in a network namespace with only
loopback (nothing it runs reaches beyond the machine, nor the machine's own daemon). The
images it needs are copied in from the local daemon with ``docker save``/``docker load``,
never pulled. ``with PrivateEngine() as engine:`` removes everything at the end, also on
errors and signals; a run that was killed is cleaned up by the next one.

Needs root (a network namespace and dockerd), ``dockerd``, ``ip`` and ``nsenter``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from .errors import UsageError

STATE = Path("/run/grader-engines")  # one folder per engine: the owner's pid, socket, data
START_TIMEOUT = 60
HTTP_WAIT = 10  # seconds an app just started may take to listen


class PrivateEngine:
    def __init__(self) -> None:
        self.name = f"grader-{uuid.uuid4().hex[:10]}"
        self.dir = STATE / self.name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def netns(self) -> str:
        return self.name

    @property
    def host(self) -> str:
        return f"unix://{self.dir / 'docker.sock'}"

    def __enter__(self) -> PrivateEngine:
        _require_tools()
        sweep()
        self.dir.mkdir(parents=True)
        (self.dir / "owner").write_text(str(os.getpid()))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start(self) -> None:
        _run("ip", "netns", "add", self.netns)
        _run("nsenter", f"--net=/var/run/netns/{self.netns}", "ip", "link", "set", "lo", "up")
        data = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir="/var/tmp"))  # images: not in RAM
        (self.dir / "data").write_text(str(data))
        with open(self.dir / "dockerd.log", "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/var/run/netns/{self.netns}",
                    "dockerd",
                    "--host",
                    self.host,
                    "--data-root",
                    str(data),
                    "--exec-root",
                    str(self.dir / "exec"),
                    "--pidfile",
                    str(self.dir / "docker.pid"),
                    "--log-level",
                    "warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the grader, which stops it in order
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.dir / "dockerd.log").read_text(errors="replace")[-500:]
                raise UsageError(f"the private Docker engine did not start: {tail.strip().splitlines()[-1:]}")
            if _docker(self.host, "version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise UsageError(f"the private Docker engine did not answer within {START_TIMEOUT} s")

    def copy_images(self, images: list[str]) -> None:
        """Copy ``images`` from the local daemon (as ``docker`` finds it) into this engine."""
        if not images:
            return
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", self.host, "load", "-q"], stdin=save.stdout, capture_output=True, text=True
        )
        assert save.stdout is not None
        save.stdout.close()
        saved = save.wait()
        if saved != 0 or load.returncode != 0:
            why = (save.stderr.read().decode(errors="replace") if save.stderr else "") + load.stderr
            raise UsageError(f"cannot copy the lab's images {', '.join(images)} from the local daemon: {why.strip()}")

    def http_get(self, port: int) -> str | None:
        """``curl docker:PORT``: a GET to a port published in the engine's network namespace,
        from inside it (this module's own function, run there by nsenter)."""
        code = f"import sys; from grader.sandbox import http_get; sys.exit(http_get('http://127.0.0.1:{port}/'))"
        done = subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{self.netns}", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=HTTP_WAIT + 30,
        )
        return done.stderr.strip().splitlines()[-1] if done.returncode else None

    def stop(self) -> None:
        _remove(self.dir, self.proc)
        self.proc = None


def http_get(url: str) -> str | None:
    """One GET, as ``curl`` does; an app that was just started gets a few seconds to listen.
    Why it failed, or None (any HTTP answer, an error status too, is an answer)."""
    deadline = time.monotonic() + HTTP_WAIT
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                answer.read(1 << 16)
            return None
        except urllib.error.HTTPError:
            return None
        except OSError as exc:
            if time.monotonic() > deadline:
                return f"no answer from {url}: {exc}"
            time.sleep(0.2)


def local_images(wanted: set[str]) -> list[str]:
    """The local daemon's images among ``wanted`` (names as a rubric or a command gives them:
    ``redis`` is ``redis:latest``)."""
    listed = _docker(None, "images", "--format", "{{.Repository}}:{{.Tag}}", check=False)
    if listed.returncode != 0:
        raise UsageError(f"cannot list the local daemon's images: {listed.stderr.strip()}")
    tags = set(listed.stdout.split())
    return sorted(t for t in tags if t in wanted or t.removesuffix(":latest") in wanted)


def sweep() -> None:
    """Remove the engines of earlier runs whose grader is gone (killed, or the machine restarted)."""
    if not STATE.is_dir():
        return
    for folder in STATE.iterdir():
        with contextlib.suppress(OSError, ValueError):
            owner = int((folder / "owner").read_text())
            if not pid_alive(owner):
                _remove(folder, None)


def _remove(folder: Path, proc: subprocess.Popen[bytes] | None) -> None:
    netns = folder.name
    pid = proc.pid if proc is not None and proc.poll() is None else None
    if pid is None:
        with contextlib.suppress(OSError, ValueError):
            pid = int((folder / "docker.pid").read_text())
    if pid and pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_alive(pid) and time.monotonic() < deadline:
            if proc is not None:
                proc.poll()
            time.sleep(0.1)
    if Path(f"/var/run/netns/{netns}").exists():
        for line in _run("ip", "netns", "pids", netns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(line), signal.SIGKILL)
    data = None
    with contextlib.suppress(OSError):
        data = Path((folder / "data").read_text())
    roots = tuple(str(p) for p in (folder, data) if p)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(roots)), key=len, reverse=True):
        _run("umount", "-l", point, check=False)
    if Path(f"/var/run/netns/{netns}").exists():
        _run("ip", "netns", "del", netns, check=False)
    if data is not None:
        shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)


def _require_tools() -> None:
    if os.geteuid() != 0:
        raise UsageError("a private Docker engine needs root (a network namespace): run as root, or give --docker-host")
    missing = [tool for tool in ("dockerd", "docker", "ip", "nsenter") if shutil.which(tool) is None]
    if missing:
        raise UsageError(f"a private Docker engine needs {', '.join(missing)}: install them, or give --docker-host")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise UsageError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def _docker(host: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    prefix = ["docker", "-H", host] if host else ["docker"]
    kwargs: dict[str, Any] = {"capture_output": True, "text": True, "timeout": 60}
    done = subprocess.run([*prefix, *args], **kwargs)
    if check and done.returncode != 0:
        raise UsageError(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done
