"""A private PostgreSQL server for the tests: Debian's postgresql binaries, a throwaway
cluster owned by the postgres user, listening on a Unix socket only (no TCP port)."""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from .system import run


class BenchPostgres:
    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = Path(found[-1])
        self.root = Path(tempfile.mkdtemp(prefix="grader-pg-"))
        self.data = self.root / "data"
        self.socket = self.root / "socket"

    def _as_postgres(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("runuser", "-u", "postgres", "--", *args)

    def start(self) -> BenchPostgres:
        self.socket.mkdir(parents=True)
        shutil.chown(self.root, "postgres")
        shutil.chown(self.socket, "postgres")
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "grader", "--auth=trust", "-E", "UTF8")
        options = f"-k {self.socket} -c listen_addresses='' -c fsync=off -c max_connections=200"
        log = self.root / "server.log"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        if self.data.exists():
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://grader@/{database}?host={self.socket}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        run(
            str(self.bin / "psql"),
            "-h",
            str(self.socket),
            "-U",
            "grader",
            "-d",
            "postgres",
            "-c",
            f"CREATE DATABASE {name}",
        )
        return self.url(name)
