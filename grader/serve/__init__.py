"""``grader serve``: the live class. Students' ``check --server`` and ``check --watch --server``
send sealed bundles; the server verifies and stores each as ``grader import --secret`` would
(``grader.importing``), and the instructor's dashboard shows every roster student's row change
within a second (``board``, ``fanout``, ``app``). Never loads docker: it only reads results."""

from __future__ import annotations

import logging
import re
import secrets
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from starlette.applications import Starlette

TOKEN_MIN = 16  # characters of an instructor token read from a file
DEFAULT_BIND = "127.0.0.1:8000"


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Bind:
        found = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(\d{1,5})", text.strip())
        if not found or not 0 < int(found[2]) < 65536:
            raise UsageError(f"--bind is HOST:PORT (e.g. 0.0.0.0:8000 or [::]:8000), not {text[:80]!r}")
        return cls(found[1].strip("[]"), int(found[2]))


def instructor_token(token_file: Path | None) -> str:
    """The token that opens the dashboard: read from ``token_file``, or made now."""
    if token_file is None:
        return secrets.token_urlsafe(24)
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the instructor token {token_file}: {exc}") from None
    if len(token) < TOKEN_MIN or not token.isprintable() or " " in token:
        raise UsageError(f"{token_file}: an instructor token is one word of at least {TOKEN_MIN} characters")
    return token


def build(
    *,
    db_url: str | None,
    students: list[str],
    secret: Path,
    rubric_refs: list[str],
    token: str,
    stuck_after: timedelta,
    secure: bool = False,
    workers: int = 0,
) -> Starlette:
    """The web app of a live class (for ``serve`` and for tests): a board per rubric, bundles
    checked in ``workers`` processes (``checking``; 0: in the server's)."""
    from ..importing import Importer
    from ..store import Store
    from .app import Live, create_app
    from .board import Board
    from .checking import Checking
    from .fanout import fanout
    from .writer import Writer

    store = Store(db_url)
    importer = Importer(store, rubric_refs=rubric_refs, secret=secret, source="live")
    boards = [Board(rubric, students, stuck_after, n) for n, rubric in enumerate(importer.rubrics.values())]
    changes = fanout(store, boards)
    checking = Checking(importer, workers, rubric_refs, secret)
    live = Live(store, importer, boards, changes, Writer(importer, changes), checking, token, secure)
    return create_app(live)


def serve(
    *,
    db_url: str | None,
    students: list[str],
    secret: Path,
    rubric_refs: list[str],
    bind: Bind,
    tls: tuple[Path, Path] | None,
    token_file: Path | None,
    stuck_after: timedelta,
    workers: int,
) -> None:
    """Serve the live class until interrupted (SIGINT or SIGTERM: the open dashboards' event
    streams end, and it returns)."""
    import uvicorn

    from ..i18n import default_lang, translations
    from .server import Server

    token = instructor_token(token_file)
    app = build(
        db_url=db_url,
        students=students,
        secret=secret,
        rubric_refs=rubric_refs,
        token=token,
        stuck_after=stuck_after,
        secure=tls is not None,
        workers=workers,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s grader serve: %(message)s", stream=sys.stderr)
    scheme = "https" if tls else "http"
    host = f"[{bind.host}]" if ":" in bind.host else bind.host
    url = f"{scheme}://{host}:{bind.port}/"
    said = translations(default_lang())  # the instructor's locale, as the dashboard's Accept-Language
    _, ngettext = said.gettext, said.ngettext
    count = len(students)
    started = ngettext(
        "the live class of %(count)d student at %(url)s",
        "the live class of %(count)d students at %(url)s",
        count,
    )
    print(f"grader serve: {started % {'count': count, 'url': url}}", file=sys.stderr)
    if token_file is None:
        told = _("instructor token (log in with it): %(token)s") % {"token": token}
        print(f"grader serve: {told}", file=sys.stderr)
    certificate, key = tls if tls else (None, None)
    config = uvicorn.Config(
        app,
        host=bind.host,
        port=bind.port,
        ssl_certfile=certificate,
        ssl_keyfile=key,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    Server(config, app.state.live.fanout).run()
    stopped = _("stopped")
    print(f"grader serve: {stopped}", file=sys.stderr)
