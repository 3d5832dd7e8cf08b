"""``grader check``'s checklist: a line per step, the first step not done unfolded with its
checks, messages and hints, the score and the next command. Over the recorded golden snapshots
(pure), then on the real bench: in every state of each lab as it is played, in both languages,
and in a pty, in Indonesian, on a lab 2 played half-way."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from io import StringIO
from pathlib import Path

import pytest
from bench import labs
from bench.daemon import BenchDaemon
from rich.console import Console

from grader import render
from grader.evaluate import evaluate
from grader.grading import Graded, grade
from grader.rubric import load
from grader.snapshot import Snapshot

GOLDEN = Path(__file__).parent / "golden"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# Words of English sentences that Indonesian never uses: what remains once commands and the
# lab's names are taken out of a line must hold none of them.
ENGLISH = {
    "the", "is", "are", "on", "not", "no", "with", "from", "and", "to", "of", "but", "by", "it", "its",
    "exists", "runs", "run", "answers", "answered", "resolves", "needs", "blocked", "passed", "failed",
    "hint", "next", "score", "step", "task", "check", "network", "container", "app", "still",
    "start", "create", "missing", "found", "expected", "attached", "uses", "well", "done", "everything",
}  # fmt: skip


def graded(case: str, student: str = "ani") -> Graded:
    rubric = load((GOLDEN / case / "rubric").read_text().strip())
    snapshot = Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())
    return Graded(student, rubric, snapshot, evaluate(rubric, snapshot), "2026-11-02T09:00:00+00:00")


def text(result: Graded, lang: str = "en", **console: object) -> str:
    out = StringIO()
    Console(file=out, width=80, **console).print(render.checklist(result, lang))  # type: ignore[arg-type]
    return out.getvalue()


def test_the_checklist_of_a_daemon_that_forgot_network_connect() -> None:
    """Steps done are one line each; the first step not done lists its checks, the failing ones
    with message and hint; then the score and what to type."""
    result = graded("networks-forgot-connect")
    lines = text(result).splitlines()
    outcome = result.outcome
    first = next(c.task for c in outcome.checks if not c.passed)
    done = [n for n in result.rubric.numbers if n < first]
    assert lines[0] == "Docker networks (embedded DNS) · ani"
    for n in done:  # folded: the task's line, no check of it
        title = result.rubric.task(n).title_in()
        assert sum(line.startswith(f"✔ {title}") for line in lines) == 1
    assert not any(line.startswith(f"  ✔ {c.title}") for line in lines for c in outcome.checks if c.task in done)
    assert any(line.startswith(f"  ✔ {c.title}") for line in lines for c in outcome.checks if c.task == first)
    failing = [c for c in outcome.checks if c.task == first and c.status == "failed"]
    for c in failing:
        assert c.message in flat(lines) and f"hint: {c.hint}" in flat(lines)
    command = "docker network connect --alias db frontend-network2 redis"  # the failing check's hint
    assert flat(lines).endswith(f"Total: {outcome.score:g}/{outcome.max_score:g} · next: {command}")
    assert len(lines) <= 25


def test_a_later_step_not_done_is_its_line_and_its_score() -> None:
    """Steps 1, 3, 4 and 5 fail, 2 and 6 are blocked in part: only step 1 is unfolded."""
    result = graded("networks-typo")
    for lang in ("en", "id"):
        lines = text(result, lang).splitlines()
        assert len(lines) <= 15, lines
        for n in (2, 3, 4, 5, 6):
            checks = [c for c in result.outcome.checks if c.task == n]
            title = result.rubric.task(n).title_in(lang)
            mark = "✘" if any(c.status == "failed" for c in checks) else "⊘"
            score = f"{sum(c.points for c in checks):g}/{sum(c.max_points for c in checks):g}"
            assert [line.split() for line in lines if title in line] == [[mark, *title.split(), score]]
        later = [c.title for c in render.in_lang(result, lang).outcome.checks if c.task > 1]
        assert not [line for line in lines for title in later if title in line]  # no check of theirs


def test_the_next_command_comes_from_a_hint_never_a_template() -> None:
    result = graded("networks-typo")  # backend_network: step 1 fails, its hint names the command
    assert render.next_command(result, 1) == "docker network create backend-network"
    # A step whose failing checks give no command: check that step again.
    empty = graded("links-empty")
    assert render.next_command(empty, 2) == "docker run --link redis-server:redis alpine env"
    assert render.next_command(empty, 99) == "grader check --task 99"


def test_everything_done_is_one_line_per_step_and_well_done() -> None:
    result = graded("networks-reference")
    lines = text(result).splitlines()
    assert len(lines) == 1 + len(result.rubric.tasks) + 1
    assert lines[-1] == "Total: 25.5/25.5 · Everything passes. Well done!"


def flat(lines: list[str] | str) -> str:
    """The words of a text, however it was wrapped."""
    return " ".join((lines if isinstance(lines, str) else " ".join(lines)).split())


def test_indonesian_titles_messages_hints_and_words() -> None:
    shown = flat(text(graded("networks-typo"), "id"))
    assert "Jaringan Docker (DNS bawaan)" in shown and "1. Membuat jaringan" in shown
    assert "tidak ada jaringan backend-network (ada 'backend_network': salah ketik?)" in shown
    assert "saran: Jalankan: docker network create backend-network" in shown
    assert "berikutnya: docker network create backend-network" in shown and "Total:" in shown


def test_plain_text_without_a_terminal_or_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    result = graded("networks-forgot-connect")
    assert "\x1b[" not in text(result)  # not a terminal: no escape sequence at all
    assert "\x1b[31m" in text(result, force_terminal=True)
    monkeypatch.setenv("NO_COLOR", "1")
    coloured = text(result, force_terminal=True)
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m", coloured)  # bold may stay; colours go


def test_student_text_is_shown_escaped() -> None:
    result = graded("networks-forgot-connect", student="\x1b[2Jbad[/]name")
    out = text(result, force_terminal=True)
    assert "\x1b[2J" not in out and "\\x1b[2Jbad[/]name" in ANSI.sub("", out)


# -- on the real bench, as a student runs it -----------------------------------------------


def in_pty(args: list[str], env: dict[str, str], rows: int = 24, columns: int = 80) -> str:
    """Run ``args`` with a pseudo-terminal of that size as its stdout and stderr; its output."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=10)
    os.close(leader)
    return b"".join(chunks).decode()


def english_left(line: str, names: set[str]) -> set[str]:
    """The English words of ``line`` once its commands, flags and the lab's names are out."""
    line = render.COMMAND.sub(" ", line)
    words = re.findall(r"[A-Za-z][A-Za-z'_-]*", line)
    return {w.lower() for w in words if w not in names and not w.startswith("-")} & ENGLISH


# Lab 2 half-done (issue 20): both networks made and redis on the first; no explore step run.
HALF_DONE = labs.Step(
    "half-done",
    (
        ("network", "create", "backend-network"),
        ("run", "-d", "--name=redis", "--net=backend-network", "redis"),
        ("network", "create", "frontend-network"),
    ),
)


def fits_a_terminal(daemon: BenchDaemon, rubric: str, state: str) -> None:
    """The checklist of the daemon as it is, in both languages: at most 25 lines at 80 columns,
    the first step not done unfolded, every later one its line and its score."""
    result = grade(rubric, student="ani", docker_host=daemon.host, store=False)
    first = next((c.task for c in result.outcome.checks if not c.passed), None)
    for lang in ("en", "id"):
        lines = text(result, lang).splitlines()
        assert len(lines) <= 25, f"{rubric}, {state} ({lang}): {len(lines)} lines\n" + "\n".join(lines)
        titles = {c.title: c.task for c in render.in_lang(result, lang).outcome.checks}
        unfolded = {n for line in lines if line.startswith("  ") for t, n in titles.items() if t in line}
        assert unfolded <= {first}, f"{rubric}, {state} ({lang})\n" + "\n".join(lines)


@pytest.mark.docker
@pytest.mark.engines("28.5")
@pytest.mark.parametrize("rubric", ["docker-networks", "docker-links"])
def test_every_state_of_a_lab_fits_a_terminal(daemon: BenchDaemon, rubric: str) -> None:
    """From the empty daemon (lab 2: 32 lines before issue 20) through each step played."""
    lab = labs.LABS[rubric]
    fits_a_terminal(daemon, rubric, "empty daemon")
    for number, step in enumerate(lab, 1):
        labs.play(daemon, [step])
        fits_a_terminal(daemon, rubric, f"after step {number} ({step.title})")
    if rubric == "docker-networks":
        daemon.reset()
        labs.play(daemon, [HALF_DONE])
        fits_a_terminal(daemon, rubric, "half-done")  # 28 lines before issue 20


@pytest.mark.docker
@pytest.mark.engines("28.5")
def test_check_in_indonesian_on_a_half_done_lab_in_a_pty(daemon: BenchDaemon, tmp_path: Path) -> None:
    labs.play(daemon, labs.NETWORKS_LAB, upto=5)  # steps 1-5 of 9: the second network not yet made
    env = {**os.environ, "TERM": "xterm-256color", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    for variable in ("NO_COLOR", "XDG_DATA_HOME", "GRADER_DB"):
        env.pop(variable, None)
    args = [sys.executable, "-m", "grader.cli", "check", "--lang", "id", "--docker-host", daemon.host]
    output = in_pty(args, env)
    assert "\x1b[" in output  # a terminal: coloured
    lines = ANSI.sub("", output).replace("\r\n", "\n").strip("\n").split("\n")
    print("\n".join(lines))
    assert len(lines) <= 25, len(lines)
    assert lines[0].startswith("Jaringan Docker (DNS bawaan) · ")
    assert lines[-1].startswith("Total: ") and "berikutnya: docker network create frontend-network" in lines[-1]
    rubric = load("docker-networks")
    names = {"redis", "alpine", "env", "db", "PING", "Redis", "DNS", "Docker", "grader", "UTC", "IMAGE"}
    names |= {w for _, c in rubric.checks() for w in re.findall(r"[\w.-]+", c.params.model_dump_json())}
    for line in lines:
        assert not english_left(line, names), line
    # The default store is the user's data folder, not the current one.
    assert (tmp_path / ".local" / "share" / "grader" / "grader.db").is_file()


def test_an_unwritable_submit_or_report_folder_is_one_line_before_any_work(tmp_path: Path) -> None:
    """Before the daemon is reached (there is none: that would be exit 3) or the store read."""
    from click.testing import CliRunner

    from grader.cli import main

    (tmp_path / "file").write_text("")
    nowhere = ["--docker-host", "unix:///nonexistent.sock", "--db", f"sqlite:///{tmp_path / 'g.db'}"]
    for bad in (tmp_path / "file" / "lab2.json", tmp_path / "missing" / "lab2.json", tmp_path):
        done = CliRunner().invoke(main, ["check", "--submit", str(bad), *nowhere])
        assert done.exit_code == 2 and done.stderr.startswith(f"grader: cannot write {bad}: "), done.stderr
        assert len(done.stderr.splitlines()) == 1
    done = CliRunner().invoke(main, ["report", "--db", "sqlite:///none.db", "--out", str(tmp_path / "file" / "site")])
    assert (
        done.exit_code == 2
        and done.stderr == f"grader: cannot write {tmp_path / 'file' / 'site'}: {tmp_path / 'file'} is not a folder\n"
    )
    assert not (tmp_path / "g.db").exists()
