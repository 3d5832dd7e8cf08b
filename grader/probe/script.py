"""A probe origin's script: every action's shell command (busybox tools, as in alpine), run
concurrently, each under its own timeout, its output capped, in sections framed with a nonce;
and the facts read back from each section."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .spec import ProbeSpec

# Bytes of one action's output that are kept, from its start: reading stops there, so a
# student's command printing a gigabyte costs the grader at most this much per action (and
# that command ends at once, of SIGPIPE, or on its write error).
OUTPUT_CAP = 1 << 20
# Actions that read a fact (a file, the environment): a run that did not succeed is no evidence.
READS = frozenset({"env", "hosts", "resolv"})
BOUND = 3  # seconds for one address's HTTP request where a probe tries several
TIMED_OUT = 124  # the exit code a section reports for a command stopped at its timeout
# Seconds the script may take past its slowest timeout: the outputs' readers of commands that
# ended get this long to drain their pipes before they are killed too (a process that left our
# process group may hold one open).
DRAIN = 2


def command_for(spec: ProbeSpec, addresses: Sequence[str] | None) -> str:
    """The shell command of one probe action (busybox tools, as in alpine): at each of
    ``addresses`` in turn until one answers, or at the host name as typed (None)."""
    if addresses and len(addresses) > 1:
        # An address on a network the container is not on may drop the connection: wget would
        # wait minutes, so each try gets BOUND seconds where the container has `timeout`.
        tries = " || ".join(f"{{ {_command(spec, address, '$t ')}; }}" for address in addresses)
        return f't=; command -v timeout >/dev/null 2>&1 && t="timeout {BOUND}"; {tries}'
    return _command(spec, addresses[0] if addresses else None)


def _command(spec: ProbeSpec, address: str | None, bounded: str = "") -> str:
    host = shlex.quote(address or spec.host)
    port = spec.port or 0
    match spec.action:
        case "env":
            return "env"
        case "hosts":
            return "cat /etc/hosts"
        case "resolv":
            return "cat /etc/resolv.conf"
        case "resolve":
            return f"getent hosts {host} || nslookup {host}"
        case "ping":
            return f"ping -c 1 -W 2 {host}"
        case "tcp":
            return f"nc -w 3 {host} {port} </dev/null"
        case "http":
            url = shlex.quote(f"http://{address or spec.host}:{port or 80}/")
            get = f"{bounded}wget -q -O - {url}"
            return f"{get} && {{ echo; echo '--- second request ---'; {get}; }}"
        case "redis_ping":
            return f"printf 'PING\\r\\nQUIT\\r\\n' | nc -w 3 {host} {port or 6379}"
        case "command":
            return " ".join(shlex.quote(a) for a in spec.argv)
    raise AssertionError(spec.action)


@dataclass(frozen=True)
class Script:
    """The shell script of ``count`` commands, its nonce, and the seconds it may take."""

    text: str
    nonce: str
    count: int
    seconds: int

    @property
    def cleanup(self) -> str:
        """What ends a script that was abandoned and removes its folder: its process group
        killed (its id is in the folder), the folder removed."""
        return (
            f'd={_folder(self.nonce)}; p=$(cat "$d/pid" 2>/dev/null); '
            'case $p in ""|*[!0-9]*) ;; *) kill -9 -"$p" 2>/dev/null;; esac; rm -rf "$d"'
        )


# Kills every process of the script's own process group but the shell and the ones named
# (Docker makes each exec a session of its own: that group is the script and what it started,
# a command's background children too). Read from /proc, which every Linux container has.
_SWEEP = r"""sweep() {
  [ "$g" = "$$" ] || return 0
  for s in /proc/[0-9]*/stat; do
    { read -r l <"$s"; } 2>/dev/null || continue
    set -- ${l##*) }; p=${s#/proc/}; p=${p%/stat}
    [ "$3" = "$$" ] && [ "$p" != "$$" ] && case " $keep " in *" $p "*) ;; *) kill -9 "$p" 2>/dev/null;; esac
  done
}"""


def script(commands: list[tuple[str, int]], nonce: str) -> Script:
    """Run every (command, timeout) concurrently, each one's output through a FIFO read by
    ``head`` up to OUTPUT_CAP (and a byte more, which says it was cut). A command still running
    at its timeout is killed and reports TIMED_OUT; once every command ended, everything else
    they started is killed (the sweep), so no child left holding an output open can hold the
    script. Then each section is printed as a header (nonce, index, exit code, bytes kept,
    whether cut) followed by exactly those bytes: no output can forge or swallow a header. The
    outputs wait in a folder of their own, removed at the end: an exec leaves nothing in a
    student's container."""
    keep = OUTPUT_CAP + 1
    lines = [
        f'd={_folder(nonce)}; mkdir -m 700 "$d" && cd "$d" || exit 125',
        'echo $$ >pid; read -r l </proc/$$/stat; set -- ${l##*) }; g=$3; keep=""',
        _SWEEP,
    ]
    for i, (cmd, seconds) in enumerate(commands):
        lines += [
            f'mkfifo f{i}; head -c {keep} <f{i} >o{i} & h{i}=$!; keep="$keep $!"',
            f"{{ sh -c {shlex.quote(cmd)}; echo $? >r{i}; }} >f{i} 2>&1 </dev/null & c{i}=$!",
            f"( sleep {seconds}; [ -e r{i} ] || {{ echo {TIMED_OUT} >r{i}; kill -9 $c{i}; }} ) 2>/dev/null &",
        ]
    waits = " ".join(f"$c{i}" for i in range(len(commands)))
    heads = " ".join(f"$h{i}" for i in range(len(commands)))
    lines += [
        f"wait {waits}; sweep",
        f"( sleep {DRAIN}; kill -9 {heads} ) 2>/dev/null & wait {heads}",
        "trap '' PIPE",  # a reader that went away must not stop the clean-up below
    ]
    for i in range(len(commands)):
        lines.append(
            f"n=$(wc -c <o{i}); t=0; [ $n -gt {OUTPUT_CAP} ] && n={OUTPUT_CAP} t=1; "
            f"echo {nonce} {i} $(cat r{i} 2>/dev/null || echo 125) $n $t; head -c $n o{i}"
        )
    lines += ['cd / && rm -rf "$d"', 'keep=""; sweep']
    text = "\n".join(lines)
    return Script(text=text, nonce=nonce, count=len(commands), seconds=max(s for _, s in commands) + DRAIN)


def _folder(nonce: str) -> str:
    return f"${{TMPDIR:-/tmp}}/grader-{nonce}"


def output_limit(count: int) -> int:
    """The most a script of ``count`` commands can print (headers included)."""
    return count * (OUTPUT_CAP + 200) + 4096


@dataclass(frozen=True)
class Section:
    """One command's exit code, its output (its first OUTPUT_CAP bytes) and whether it was cut there."""

    rc: int
    output: str
    truncated: bool = False


def split_sections(output: bytes, nonce: str, count: int) -> list[Section | None]:
    """Each command's section of the script's output, read by the sizes its headers give;
    None from the first section missing or unreadable on (the run was cut short: that is no
    evidence)."""
    header = re.compile(rb"(\d+) (\d+) (\d+) ([01])\n")
    found: list[Section | None] = []
    at = 0
    prefix = nonce.encode() + b" "
    for i in range(count):
        match = header.match(output, at + len(prefix)) if output.startswith(prefix, at) else None
        if match is None or int(match.group(1)) != i:
            break
        size = int(match.group(3))
        body = output[match.end() : match.end() + size]
        if len(body) < size:
            break
        found.append(Section(int(match.group(2)), body.decode(errors="replace"), match.group(4) == b"1"))
        at = match.end() + size
    return found + [None] * (count - len(found))


IPV4 = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")


def parse(spec: ProbeSpec, rc: int, output: str) -> tuple[bool, dict[str, Any]]:
    """Whether the action succeeded, and the facts read from its output."""
    data: dict[str, Any] = {"exit_code": rc}
    match spec.action:
        case "env":
            data["vars"] = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
        case "hosts":
            data["entries"] = [
                line.split() for line in output.splitlines() if line.strip() and not line.startswith("#")
            ]
        case "resolv":
            data["nameservers"] = re.findall(r"^nameserver\s+(\S+)", output, flags=re.M)
        case "resolve":
            if rc == 0:
                addresses = [a for a in IPV4.findall(output) if not a.startswith("127.")]
                data["addresses"] = sorted(set(addresses))
                return bool(addresses), data
            data["addresses"] = []
        case "ping":
            match = IPV4.search(output)
            data["address"] = match.group(1) if match else None
        case "http":
            bodies = output.split("\n--- second request ---\n")
            data["bodies"] = [b.strip() for b in bodies]
        case "redis_ping":
            data["reply"] = output.strip().splitlines()[0] if output.strip() else ""
            return data["reply"] == "+PONG", data
    return rc == 0, data
