"""Fixtures of the real bench: a private Docker engine per test session, cleaned between
tests, with the lab images loaded and the labs played on demand."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench import images, labs
from bench.daemon import BenchDaemon
from bench.postgres import BenchPostgres
from bench.system import ensure_packages

_started: list[BenchDaemon | BenchPostgres] = []


def _stop_all() -> None:
    while _started:
        _started.pop().stop()


atexit.register(_stop_all)  # also on Ctrl-C and failed sessions


def start_daemon(name: str, tls: bool = False) -> BenchDaemon:
    """Start a bench daemon with the lab images loaded; stopped at session end.

    With ``tls=True`` it also listens on ``daemon.tcp_host`` with mutual TLS (``daemon.tls_files``).
    """
    if os.geteuid() != 0:
        pytest.fail("the bench needs root (it starts dockerd in a network namespace)")
    ensure_packages()
    daemon = BenchDaemon(name, tls=tls)
    _started.append(daemon)
    daemon.start()
    images.load_images(daemon, _images_tar(daemon))
    return daemon


_tar: list[Path] = []


def _images_tar(builder: BenchDaemon) -> Path:
    if not _tar:
        _tar.append(images.images_tar(builder))
    return _tar[0]


@pytest.fixture(scope="session")
def bench() -> Iterator[BenchDaemon]:
    daemon = start_daemon(f"s{os.getpid()}")
    yield daemon
    _stop_all()


@pytest.fixture
def daemon(bench: BenchDaemon) -> Iterator[BenchDaemon]:
    """A clean daemon (images only); whatever the test creates is removed afterwards."""
    bench.reset()
    yield bench
    bench.reset()


@pytest.fixture
def links_lab(daemon: BenchDaemon) -> BenchDaemon:
    """Lab 1 played to its end with the students' commands."""
    labs.play(daemon, labs.LINKS_LAB)
    return daemon


@pytest.fixture
def networks_lab(daemon: BenchDaemon) -> BenchDaemon:
    """Lab 2 played to its end with the students' commands (final step included)."""
    labs.play(daemon, labs.NETWORKS_LAB)
    return daemon


@pytest.fixture(scope="session")
def postgres() -> BenchPostgres:
    """A private PostgreSQL server (Debian's), on a Unix socket, for the whole session."""
    server = BenchPostgres()
    _started.append(server)
    return server.start()


@pytest.fixture
def pg_url(postgres: BenchPostgres) -> str:
    """The URL of a fresh, empty PostgreSQL database."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh results store: a SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'grader.db'}"
    return request.getfixturevalue("pg_url")
