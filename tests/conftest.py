"""Fixtures of the real bench: a private Docker engine per engine and test session, cleaned
between tests, with the lab images loaded and the labs played on demand.

Every test that uses the bench (``daemon``, ``links_lab``, ``networks_lab``, ``bench`` or
``engine``) runs once per engine, with the ids ``20.10`` and ``28.5``; the session's daemon of an
engine starts when its first test needs it. ``@pytest.mark.engines("28.5")`` runs a test on
the engines it names only."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from bench import images, labs
from bench.daemon import BenchDaemon
from bench.engines import DEFAULT, ENGINES
from bench.postgres import BenchPostgres
from bench.system import ensure_packages

if TYPE_CHECKING:
    from playwright.sync_api import Browser

_started: list[BenchDaemon | BenchPostgres] = []


def _stop_all() -> None:
    while _started:
        _started.pop().stop()


atexit.register(_stop_all)  # also on Ctrl-C and failed sessions


def pytest_sessionfinish() -> None:
    _stop_all()


def start_daemon(name: str, tls: bool = False, engine: str = DEFAULT) -> BenchDaemon:
    """Start a bench daemon of ``engine`` with the lab images loaded; stopped at session end.

    With ``tls=True`` it also listens on ``daemon.tcp_host`` with mutual TLS (``daemon.tls_files``).
    """
    if os.geteuid() != 0:
        pytest.fail("the bench needs root (it starts dockerd in a network namespace)")
    ensure_packages()
    daemon = BenchDaemon(name, engine=engine, tls=tls)
    _started.append(daemon)
    daemon.start()
    images.load_images(daemon, _images_tar(daemon))
    return daemon


_tar: list[Path] = []


def _images_tar(builder: BenchDaemon) -> Path:
    if not _tar:
        _tar.append(images.images_tar(builder))
    return _tar[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that needs an engine on every engine, or on those its ``engines`` mark names.
    Session scope: pytest groups the tests by engine, so each daemon is set up once."""
    if "engine" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("engines")
        chosen = marker.args if marker else ENGINES
        metafunc.parametrize("engine", chosen, indirect=True, ids=str, scope="session")


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    """The Docker engine under test: ``20.10`` or ``28.5``."""
    return request.param


_benches: dict[str, BenchDaemon] = {}


@pytest.fixture(scope="session")
def bench(engine: str) -> BenchDaemon:
    """The session's daemon of ``engine``, started when a test first needs it and kept until
    the session ends (pytest may come back to an engine after the other)."""
    return session_daemon(engine)


def session_daemon(engine: str) -> BenchDaemon:
    """``bench``'s daemon of ``engine``, for a test that needs both engines at once."""
    if engine not in _benches:
        _benches[engine] = start_daemon(f"s{os.getpid()}-{engine}", engine=engine)
    return _benches[engine]


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's), for the tests that look at pages as a browser draws them."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
