"""A signal is never lost: one that arrives while a finalizer runs (Python only reports what a
finalizer raises) still ends the run with its exit code and one line; nor does it cut short the
removal of the probe containers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from grader.probe.runner import Cleanup

SPIN = textwrap.dedent(
    """
    import os, signal, time, weakref
    from grader.cli import main

    @main.command("spin")
    def spin():
        class Thing: pass
        def finalizer():
            os.kill(os.getpid(), signal.{name})  # handled while the finalizer runs
            for _ in range(100_000): pass
        thing = Thing(); weakref.finalize(thing, finalizer); del thing
        time.sleep(5)
        print("not interrupted")

    main(["spin"])
    """
)


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_a_signal_during_a_finalizer_still_ends_the_run(name: str, code: int) -> None:
    done = subprocess.run([sys.executable, "-c", SPIN.format(name=name)], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (code, "")
    assert done.stderr == f"grader: interrupted ({name}); probe containers were removed\n"


REMOVING = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from pathlib import Path
    from grader.cli import main
    from grader.probe.runner import Cleanup

    def removal():  # a probe container the daemon takes a while to remove
        time.sleep(0.5)
        Path(sys.argv[1]).write_text("removed")

    @main.command("spin")
    def spin():
        with Cleanup() as cleanup:
            cleanup.start(removal)
            if {waiting}:  # the signal comes while the block's end waits for the removal
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
            else:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)

    main(["spin"])
    """
)


@pytest.mark.parametrize("waiting", [False, True])
def test_a_signal_never_cuts_the_probe_containers_removal_short(tmp_path: Path, waiting: bool) -> None:
    """The process ends only once its probe containers' removal (in the background) ended, a
    signal in the middle of the work or of the wait for them included."""
    removed = tmp_path / "removed"
    done = subprocess.run(
        [sys.executable, "-c", REMOVING.format(waiting=waiting), str(removed)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 143, done.stderr
    assert done.stderr == "grader: interrupted (SIGTERM); probe containers were removed\n"
    assert removed.read_text() == "removed"


def test_the_wait_for_the_removal_is_bounded() -> None:
    """A daemon that never answers a removal holds the wait only up to its bound (what is left
    ends by itself within the probe containers' life)."""
    answered = threading.Event()
    cleanup = Cleanup()
    cleanup.start(answered.wait)
    started = time.monotonic()
    assert cleanup.wait(timeout=0.2) is False
    assert 0.2 <= time.monotonic() - started < 2
    answered.set()
    assert cleanup.wait(timeout=5) is True
