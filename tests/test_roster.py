"""The roster and the course secret: read as any file from elsewhere (a regular file, a size
cap, one clear line), by one reader that every command shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.errors import UsageError
from grader.keys import secret
from grader.roster import Target, read_roster, roster_rows, roster_students

DB = "sqlite:///{}/class.db"


def grader(*args: str) -> subprocess.CompletedProcess[str]:
    """The grader in a child process with a deadline: a FIFO once made it wait forever."""
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True, timeout=60)


def refused(call, *args: object) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as caught:
        call(*args)
    return str(caught.value)


def test_a_quoted_line_break_is_refused_with_its_line(tmp_path: Path) -> None:
    # Before: the file was split into lines first, and the name was read as "AniLestari".
    roster = tmp_path / "class.csv"
    roster.write_text('student,docker_host\nbudi,unix:///b.sock\n"Ani\nLestari",unix:///a.sock\n')
    message = f"{roster}:3: a quoted cell holds a line break; a student's row is one line"
    assert refused(read_roster, roster) == refused(roster_students, roster) == message


def test_quoted_cells_are_read_by_the_csv_reader(tmp_path: Path) -> None:
    roster = tmp_path / "class.csv"
    roster.write_text('student,docker_host,email\n"Lestari, Ani",unix:///a.sock,"ani@x"\n\nbudi,unix:///b.sock\n')
    assert read_roster(roster) == [Target("Lestari, Ani", "unix:///a.sock"), Target("budi", "unix:///b.sock")]
    assert [row["email"] for row in roster_rows(roster)] == ["ani@x", ""]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"student,docker_host\nani\x00,unix:///a.sock\n", "{}:2: a cell holds the control character U+0000"),
        (b"student,docker_host\nani\x1b[2J,unix:///a.sock\n", "{}:2: a cell holds the control character U+001B"),
        (b"student,docker_host\n" + b"a" * 200_000 + b",unix:///a\n", "{}:2: not CSV: field larger than field limit"),
        (b"student,docker_host\n\xffani,unix:///a\n", "cannot read the roster {}: not UTF-8 (byte 20)"),
    ],
    ids=["nul", "escape", "long-cell", "latin-1"],
)
def test_a_roster_that_is_not_csv_is_one_line(tmp_path: Path, data: bytes, message: str) -> None:
    roster = tmp_path / "class.csv"
    roster.write_bytes(data)
    assert refused(read_roster, roster).startswith(message.format(roster))


def test_a_roster_past_4_mb_is_not_read_whole(tmp_path: Path) -> None:
    roster = tmp_path / "class.csv"
    with roster.open("wb") as file:
        file.truncate(1 << 30)  # sparse: 1 GB on paper
    assert refused(roster_rows, roster) == f"{roster}: not a roster (larger than 4 MB); a roster is a CSV file"


def test_a_rows_missing_tls_file_is_named(tmp_path: Path) -> None:
    # Before: read, then stored as the student's error without the file's name
    # ("TLSParameterError: Path to a certificate and key files must be provided ...").
    for name in ("ca.pem", "cert.pem"):
        (tmp_path / name).write_text("PEM")
    (tmp_path / "key.pem").mkdir()
    roster = tmp_path / "class.csv"
    roster.write_text("student,docker_host,tls_ca,tls_cert,tls_key\nani,tcp://pc-07:2376,ca.pem,cert.pem,key.pem\n")
    where = f"{roster}:2"
    assert refused(read_roster, roster) == f"{where}: tls_key {tmp_path / 'key.pem'} is not a TLS file (a directory)"
    (tmp_path / "key.pem").rmdir()
    assert refused(read_roster, roster) == f"{where}: tls_key {tmp_path / 'key.pem'}: No such file or directory"
    (tmp_path / "key.pem").write_text("PEM")
    [ani] = read_roster(roster)
    assert ani.tls is not None and ani.tls.key == str(tmp_path / "key.pem")


def test_a_fifo_or_a_device_is_no_roster_for_any_command(tmp_path: Path) -> None:
    # Before: keys, batch and export --roster waited on the FIFO forever; /dev/zero took 23 GB.
    fifo = tmp_path / "class.csv"
    os.mkfifo(fifo)
    db = DB.format(tmp_path)
    folder = f"{tmp_path}: not a roster (a directory); a roster is a CSV file"
    assert refused(roster_rows, tmp_path) == folder  # the commands' ROSTER refuses one before
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device")):
        line = f"grader: {path}: not a roster ({kind}); a roster is a CSV file\n"
        keys = grader("keys", str(path), "--secret", str(tmp_path / "course.key"))
        batch = grader("batch", str(path), "--rubric", "docker-networks", "--db", db)
        assert (keys.returncode, keys.stderr) == (batch.returncode, batch.stderr) == (2, line)
        assert refused(roster_rows, path) == line.removeprefix("grader: ").rstrip()
    assert not (tmp_path / "course.key").exists() and not (tmp_path / "class.db").exists()


def test_a_fifo_or_a_device_is_no_secret(tmp_path: Path) -> None:
    fifo = tmp_path / "course.key"
    os.mkfifo(fifo)
    roster = tmp_path / "class.csv"
    roster.write_text("student\nani\n")
    db = DB.format(tmp_path)
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device")):
        line = f"grader: {path} is not a course secret (32 bytes; it is {kind})\n"
        keys = grader("keys", str(roster), "--secret", str(path))
        imported = grader("import", str(roster), "--secret", str(path), "--db", db)
        assert (keys.returncode, keys.stderr) == (imported.returncode, imported.stderr) == (2, line)
    big = tmp_path / "big.key"
    big.write_bytes(b"k" * 33)
    assert refused(secret, big) == f"{big} is not a course secret (32 bytes; it is larger than 32 bytes)"


def test_a_secret_others_can_read_is_warned_about(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "course.key"
    made, _ = secret(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert secret(path) == (made, False) and capfd.readouterr().err == ""
    path.chmod(0o640)
    assert secret(path) == (made, False)
    assert capfd.readouterr().err == (
        f"grader: warning: the course secret {path} is readable by other users (mode 0640): "
        f"whoever reads it can make any student's key; chmod 600 {path}\n"
    )
    roster = tmp_path / "class.csv"
    roster.write_text("student\nani\n")
    path.chmod(0o604)
    keys = grader("keys", str(roster), "--secret", str(path))
    assert keys.returncode == 0 and "readable by other users (mode 0604)" in keys.stderr


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0"])
def test_batch_timeout_is_a_positive_number_of_seconds(tmp_path: Path, timeout: str) -> None:
    # Before: nan was accepted (every daemon timed out at once), inf and -1 as well.
    roster = tmp_path / "class.csv"
    roster.write_text("student,docker_host\nani,unix:///nowhere.sock\n")
    db = DB.format(tmp_path)
    done = grader("batch", str(roster), "--rubric", "docker-networks", "--db", db, "--timeout", timeout)
    message = f"grader: --timeout must be a number of seconds above 0, not {float(timeout):g}\n"
    assert (done.returncode, done.stderr) == (2, message)
    assert not (tmp_path / "class.db").exists()
