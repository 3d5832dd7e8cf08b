"""A signal is never lost: one that arrives while a finalizer runs (Python only reports what a
finalizer raises) still ends the run with its exit code and one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

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
