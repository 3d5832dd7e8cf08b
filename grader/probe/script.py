"""A probe origin's script: every action's shell command (busybox tools, as in alpine), run
concurrently, each under its own timeout, its output capped, in sections marked with a nonce;
and the facts read back from each section."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from .spec import ProbeSpec

# Bytes of one action's output that are kept; the rest is counted and dropped in the container,
# so a student's command printing a gigabyte costs the grader at most this much per action.
OUTPUT_CAP = 1 << 20
# Actions that read a fact (a file, the environment): a run that did not succeed is no evidence.
READS = frozenset({"env", "hosts", "resolv"})


def command_for(spec: ProbeSpec, address: str | None) -> str:
    """The shell command of one probe action (busybox tools, as in alpine)."""
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
            return f"wget -q -O - {url}; echo; echo '--- second request ---'; wget -q -O - {url}"
        case "redis_ping":
            return f"printf 'PING\\r\\nQUIT\\r\\n' | nc -w 3 {host} {port or 6379}"
        case "command":
            return " ".join(shlex.quote(a) for a in spec.argv)
    raise AssertionError(spec.action)


def script(commands: list[tuple[str, int]], nonce: str) -> str:
    """Run every (command, timeout) concurrently; print sections with a nonce so that no
    command's output can forge another's result. Each section's header carries the command's
    exit code and the bytes of output dropped beyond OUTPUT_CAP. The outputs wait in a
    temporary folder that is removed at the end: an exec leaves nothing in a student's
    container."""
    lines = ['dir=$(mktemp -d) && cd "$dir" || exit 125']
    for i, (cmd, seconds) in enumerate(commands):
        inner = shlex.quote(cmd)
        lines.append(
            f"( {{ timeout {seconds} sh -c {inner} 2>&1; echo $? >r{i}; }}"
            f" | {{ head -c {OUTPUT_CAP} >o{i}; wc -c >n{i}; }} ) &"
        )
    lines.append("wait")
    for i in range(len(commands)):
        lines.append(f"echo '{nonce} {i}' $(cat r{i}) $(cat n{i}); cat o{i}")
    lines.append('cd / && rm -rf "$dir"')
    return "\n".join(lines)


def output_limit(count: int) -> int:
    """The most a script of ``count`` commands can print (headers included)."""
    return count * (OUTPUT_CAP + 200) + 4096


@dataclass(frozen=True)
class Section:
    """One command's exit code, its output (up to OUTPUT_CAP) and the bytes dropped after it."""

    rc: int
    output: str
    dropped: int = 0


def split_sections(output: str, nonce: str, count: int) -> list[Section | None]:
    """Each command's section of the script's combined output; None where the section is
    missing or its header unreadable (the run was cut short: that is no evidence)."""
    found: dict[int, Section] = {}
    parts = re.split(rf"^{re.escape(nonce)} (\d+) ?(\d*) ?(\d*)\n?", output, flags=re.M)
    for i in range(1, len(parts) - 3, 4):
        if parts[i + 1]:
            found[int(parts[i])] = Section(int(parts[i + 1]), parts[i + 3], int(parts[i + 2] or 0))
    return [found.get(i) for i in range(count)]


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
