"""Student keys: who handed a submission bundle in.

The instructor keeps a course secret (32 random bytes in a file only they may read) and gives
each student a key (``grader keys ROSTER --secret FILE``): HMAC-SHA256 of the student's name
under the secret, its first 60 bits in base32, 12 characters to type. A student's grader seals
a bundle with it (``grader check --submit FILE --student NAME --key KEY``): the seal is an
HMAC of the bundle's digest under the key, so the key itself is never in the file, and a copy
of someone's bundle cannot be resealed with other evidence or another name. ``grader import
--secret FILE`` computes the key of the student a bundle is stored under and refuses a seal
made with any other.

A verified seal proves that whoever made the bundle knew that student's key. It proves nothing
about the evidence: the student's own machine produced it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
from pathlib import Path

from .errors import UsageError
from .util import NotRead, read_capped

SECRET_BYTES = 32
KEY_CHARS = 12  # 60 bits: no one submits 2**59 bundles to guess one
KEY = re.compile(rf"^[A-Z2-7]{{{KEY_CHARS}}}$")


def secret(path: Path, create: bool = False) -> tuple[bytes, bool]:
    """The course secret in ``path`` and whether it was made now (``create``: when missing,
    32 random bytes in a new file only its owner may read)."""
    if create:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # the secret that is there is the one every key was made with
        except OSError as exc:
            raise UsageError(f"cannot make the course secret {path}: {exc.strerror}") from None
        else:
            value = secrets.token_bytes(SECRET_BYTES)
            with os.fdopen(fd, "wb") as file:
                file.write(value)
            return value, True
    try:
        value = read_capped(path, SECRET_BYTES)
        mode = os.stat(path).st_mode & 0o777
    except NotRead as exc:
        raise UsageError(f"{path} is not a course secret ({SECRET_BYTES} bytes; it is {exc})") from None
    except OSError as exc:
        hint = " (grader keys ROSTER --secret FILE makes one)" if isinstance(exc, FileNotFoundError) else ""
        raise UsageError(f"cannot read the course secret {path}: {exc.strerror}{hint}") from None
    if len(value) != SECRET_BYTES:
        raise UsageError(f"{path} is not a course secret ({SECRET_BYTES} bytes; it has {len(value)})")
    if mode & 0o044:
        # Said by every command that reads it, here (a warning, not a refusal: the keys are out).
        print(
            f"grader: warning: the course secret {path} is readable by other users (mode {mode:04o}): "
            f"whoever reads it can make any student's key; chmod 600 {path}",
            file=sys.stderr,
        )
    return value, False


def student_key(course_secret: bytes, student: str) -> str:
    mac = hmac.new(course_secret, b"grader student key\0" + student.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:KEY_CHARS]


def typed_key(key: str) -> str:
    """A key as a student types it (any case, spaces or dashes), or a UsageError."""
    normal = re.sub(r"[\s-]", "", key).upper()
    if not KEY.match(normal):
        raise UsageError(f"--key must be the {KEY_CHARS} letters and digits of your student key from your instructor")
    return normal


def seal(key: str, digest: str) -> str:
    """The seal of a bundle whose digest is ``digest``, made with a student's key."""
    return hmac.new(key.encode(), b"grader bundle\0" + digest.encode(), hashlib.sha256).hexdigest()


def sealed_by(course_secret: bytes, student: str, digest: str, bundle_seal: str) -> bool:
    """Whether ``bundle_seal`` was made with ``student``'s key."""
    return hmac.compare_digest(seal(student_key(course_secret, student), digest), bundle_seal)


def roster_keys(roster: Path, secret_file: Path) -> tuple[list[tuple[str, str]], bool]:
    """(student, key) for every student of ``roster``, and whether the secret was made now."""
    from .roster import roster_students

    students = roster_students(roster)  # a bad roster makes no secret
    course_secret, created = secret(secret_file, create=True)
    return [(name, student_key(course_secret, name)) for name in students], created
