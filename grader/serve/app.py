"""The web face of ``grader serve``: handlers parse a request, call one use case
(``Importer.receive``, the ``Board``, the report's attempt page) and map its errors to a status.
Nothing here knows a check kind; nothing below knows HTTP.

- ``POST /api/v1/submissions``: one sealed bundle (the body, gzip or JSON), from the student
  named in the ``X-Grader-Student`` header (percent-encoded UTF-8). The name must be on the
  roster and within its rate before the body is read, the body within the bundle's bounds
  while it is read; the answer is JSON ``{"state": "stored"|"skipped"|"refused", ...}``.
- ``/``: the live class boards, one per rubric (instructor's session), ``/events``: their
  changes as Server-Sent Events, ``/attempts/ID``: an attempt's page as ``grader report``
  renders it.
- ``/login``, ``/logout``: the instructor's token for an HttpOnly, SameSite=Strict session
  cookie (signed with the token: every server process sharing the token accepts it). Wrong
  tokens from one address are answered 429 for a while once LOGINS are spent.
- ``/healthz``: for a load balancer.

No answer carries a stack trace: an unexpected error is logged and answered in one line."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ..bundle import MAX_FILE
from ..errors import BundleError, StoreError
from ..i18n import LANGS
from ..importing import Importer, Refused
from ..text import SHORT, head, printable
from .checking import Busy
from .memory import giving_back

if TYPE_CHECKING:
    from ..store import Store
    from .board import Board
    from .checking import Checking
    from .fanout import Fanout
    from .writer import Writer

log = logging.getLogger("grader.serve")
STATIC = Path(__file__).parent.parent / "report" / "static"
SESSION = "grader_session"
LOGIN_CSRF = "grader_login"
SESSION_HOURS = 12
HEARTBEAT = 15.0  # seconds between an event stream's keep-alive comments
# Seconds between an event stream's pushes at most: a push renders its changed rows and the
# pass rates (a third of a millisecond), so 150 changes a second cost 10 renders, not 150.
PUSH_EVERY = 0.1
# A student's watch sends a change every few seconds at most: a burst of 10, then one a second;
# and at most 600 bundles an hour (some 30 MB of snapshots) once a burst of 600 is spent: a
# student with a key who floods fills neither the disk nor the database.
SENDS = (10, 1.0)
HOURLY = (600, 600 / 3600)
# And at most 200 MB an hour of what they send, counted as the larger of the body and the
# snapshot JSON it holds (a bundle of 16 MB inflates to 64 MB: 600 of them would be 38 GB). A
# lab's snapshot is some 50 KB, so a watch's 600 an hour take 30 MB of it.
VOLUME = (200 << 20, (200 << 20) / 3600)
MAX_BUCKETS = 10_000
# Wrong instructor tokens from one address: 5 at once, then one a minute (a token of 32 random
# characters is not guessed that way); the right token is refused too while they are spent.
LOGINS = (5, 1 / 60)
HEADERS = {
    # No script but ours, nothing from elsewhere: a name that slipped through escaping still runs nothing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class Answer(Exception):
    """A request answered early with ``status`` and one line."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status, self.why = status, why


@dataclass
class Bucket:
    tokens: float
    at: float = field(default_factory=time.monotonic)


class Limits:
    """Token buckets per roster student (and per address for names off the roster, and for
    wrong instructor tokens): a flood is answered 429 before its body is read, and never
    logged line by line."""

    def __init__(self, burst: int, per_second: float, unit: str, what: str = "submissions") -> None:
        self.burst, self.per_second, self.unit, self.what = burst, per_second, unit, what
        self.buckets: dict[str, Bucket] = {}

    def take(self, sender: str) -> None:
        self.check(sender).tokens -= 1

    def check(self, sender: str) -> Bucket:
        """``sender``'s bucket, refilled; 429 when it is empty."""
        bucket = self.bucket(sender)
        if bucket.tokens < 1:
            raise Answer(429, f"too many {self.what} from {head(sender, SHORT)}: at most {self.unit}")
        return bucket

    def bucket(self, sender: str) -> Bucket:
        """``sender``'s bucket, refilled."""
        if len(self.buckets) > MAX_BUCKETS:  # senders off the roster, by address: forget them all
            self.buckets = {name: b for name, b in self.buckets.items() if not name.startswith("address ")}
        bucket = self.buckets.setdefault(sender, Bucket(self.burst))
        now = time.monotonic()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_second)
        bucket.at = now
        return bucket


@dataclass
class Live:
    """What the handlers share: the use cases and this process's state."""

    store: Store
    importer: Importer
    boards: list[Board]  # one per rubric, each of every roster student
    fanout: Fanout
    writer: Writer
    checking: Checking
    token: str
    secure: bool  # served over TLS: cookies are Secure
    sends: Limits = field(default_factory=lambda: Limits(*SENDS, f"{SENDS[1]:g} a second"))
    hourly: Limits = field(default_factory=lambda: Limits(*HOURLY, f"{HOURLY[0]} an hour"))
    volume: Limits = field(default_factory=lambda: Limits(*VOLUME, f"{VOLUME[0] >> 20} MB an hour", "bytes"))
    logins: Limits = field(default_factory=lambda: Limits(*LOGINS, "one a minute", "wrong tokens"))

    def board_of(self, rubric_id: str) -> Board | None:
        return next((board for board in self.boards if board.rubric.id == rubric_id), None)


def create_app(live: Live) -> Starlette:
    def page(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """An instructor's page: a session, or the login form."""

        async def guarded(request: Request) -> Response:
            if not _session_ok(live.token, request.cookies.get(SESSION, "")):
                return RedirectResponse("/login", 303)
            return _headed(await handler(request))

        return guarded

    async def submit(request: Request) -> Response:
        try:
            student = _sender(request)
            on_roster = student in live.boards[0].places
            live.sends.take(student if on_roster else f"address {request.client.host if request.client else '?'}")
            if not on_roster:
                raise Answer(403, f"{head(student, SHORT)} is not on this class's roster")
            live.volume.check(student)  # before a count is taken: a refused request costs none
            live.hourly.take(student)
            data = await _body(request)
            live.volume.bucket(student).tokens -= len(data)  # a bundle refused costs what was sent
            checked = await live.checking(data, student)
            live.volume.bucket(student).tokens -= max(0, len(checked.body) - len(data))  # and one stored, its JSON
            taken = await live.writer.store(checked)
        except Answer as exc:
            if exc.status not in (429, 503):  # a flood's answers are never logged one by one
                _logged(request, exc.status, exc.why)
            return _refused(exc.status, exc.why, {"Retry-After": "1"} if exc.status == 429 else None)
        except Refused as exc:
            _logged(request, 403 if exc.forged else 400, str(exc))
            return _refused(403 if exc.forged else 400, str(exc))
        except BundleError as exc:
            return _refused(400, str(exc))
        except StoreError as exc:
            log.error("cannot store a submission: %s", printable(str(exc)))
            return _refused(503, "the server could not store it now; it is sent again later")
        except Busy:
            return _refused(503, "the server is busy; it is sent again later")
        answer = {"student": taken.student, "score": taken.outcome.score, "max_score": taken.outcome.max_score}
        if taken.attempt_id is None:
            return JSONResponse({"state": "skipped", "why": "this snapshot is already stored", **answer})
        return JSONResponse({"state": "stored", "attempt": taken.attempt_id, **answer})

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    @page
    async def dashboard(request: Request) -> Response:
        lang = _lang(request)
        html = _template("live.html", lang).render(
            boards=[(board, board.rows(lang), board.rates(lang)) for board in live.boards],
            students=len(live.boards[0].places),
            logout_csrf=_csrf_of(live.token, request.cookies[SESSION]),
            root="/",
        )
        return HTMLResponse(html)

    @page
    async def events(request: Request) -> Response:
        lang = _lang(request)
        changes = live.fanout.subscribe()

        async def stream() -> AsyncIterator[str]:
            pushed = 0.0
            try:
                yield "retry: 1000\n\n"
                while True:
                    try:
                        keys = await asyncio.wait_for(changes.get(), HEARTBEAT)
                    except TimeoutError:
                        if not live.fanout.subscribed(changes):  # dropped as too slow: the browser reconnects
                            return
                        yield ": alive\n\n"
                        continue
                    if not live.fanout.subscribed(changes):  # the server is stopping (or dropped it)
                        return
                    # A busy class: what piles up until PUSH_EVERY after the last push goes as one.
                    await asyncio.sleep(pushed + PUSH_EVERY - time.monotonic())
                    while not changes.empty():
                        keys = keys | changes.get_nowait()
                    yield f"data: {json.dumps(_fragments(live.boards, keys, lang))}\n\n"
                    pushed = time.monotonic()
            finally:
                live.fanout.unsubscribe(changes)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @page
    async def attempt(request: Request) -> Response:
        try:
            attempt_id = int(request.path_params["attempt_id"].removesuffix(".html"))
            html = await run_in_threadpool(_attempt_html, live, attempt_id, _lang(request))
        except (ValueError, StoreError):
            return HTMLResponse("no such attempt", 404)
        return HTMLResponse(html)

    @page
    async def student(request: Request) -> Response:
        name = live.boards[0].files.get(f"students/{request.path_params['file']}")
        if name is None:
            return HTMLResponse("no such student", 404)
        try:
            html = await run_in_threadpool(_student_html, live, name, _lang(request))
        except StoreError:
            return HTMLResponse("the results store cannot be read now", 503)
        return HTMLResponse(html)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            nonce = secrets.token_urlsafe(16)
            html = _template("login.html", _lang(request)).render(csrf=nonce, failed=False, root="/")
            response = _headed(HTMLResponse(html))
            response.set_cookie(LOGIN_CSRF, nonce, httponly=True, samesite="strict", secure=live.secure)
            return response
        address = f"address {request.client.host if request.client else '?'}"
        try:
            live.logins.check(address)
        except Answer as exc:
            return _headed(HTMLResponse(exc.why, 429, headers={"Retry-After": "60"}))
        form = await _form(request)
        nonce = request.cookies.get(LOGIN_CSRF, "")
        if not nonce or not hmac.compare_digest(str(form.get("csrf", "")), nonce):
            return _headed(HTMLResponse("the login form expired: open /login again", 403))
        if not hmac.compare_digest(str(form.get("token", "")).strip().encode(), live.token.encode()):
            _logged(request, 403, "a wrong instructor token")
            live.logins.take(address)
            html = _template("login.html", _lang(request)).render(csrf=nonce, failed=True, root="/")
            return _headed(HTMLResponse(html, 403))
        response = RedirectResponse("/", 303)
        response.set_cookie(
            SESSION,
            _session(live.token),
            max_age=SESSION_HOURS * 3600,
            httponly=True,
            samesite="strict",
            secure=live.secure,
        )
        response.delete_cookie(LOGIN_CSRF)
        return response

    @page
    async def logout(request: Request) -> Response:
        form = await _form(request)
        if not hmac.compare_digest(str(form.get("csrf", "")), _csrf_of(live.token, request.cookies[SESSION])):
            return HTMLResponse("not from the dashboard's form", 403)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION)
        return response

    async def stylesheet(_request: Request) -> Response:
        return FileResponse(STATIC / "report.css", media_type="text/css")

    async def script(_request: Request) -> Response:
        return FileResponse(STATIC / "live.js", media_type="text/javascript")

    async def home(_request: Request) -> Response:
        return RedirectResponse("/", 303)  # the report's pages link to their index.html

    async def failed(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"state": "refused", "why": "internal error (logged on the server)"}, 500)

    routes = [
        Route("/api/v1/submissions", submit, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/", dashboard),
        Route("/index.html", home),
        Route("/events", events),
        Route("/attempts/{attempt_id}", attempt),
        Route("/students/{file}", student),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/report.css", stylesheet),
        Route("/live.js", script),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await live.checking.start()
        await live.fanout.start()
        trimming = asyncio.create_task(giving_back())
        try:
            yield
        finally:
            trimming.cancel()
            await live.fanout.stop()
            await live.checking.stop()

    app = Starlette(routes=routes, exception_handlers={Exception: failed}, lifespan=lifespan)
    app.state.live = live  # for the server, which ends the event streams when it stops, and tests
    return app


# -- the handlers' parts ---------------------------------------------------------------------


def _sender(request: Request) -> str:
    raw = request.headers.get("x-grader-student")
    if not raw:
        raise Answer(400, "no X-Grader-Student header: who sends this?")
    try:
        student = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise Answer(400, "the X-Grader-Student header is not percent-encoded UTF-8") from None
    return student


async def _body(request: Request) -> bytes:
    """The request's body, read no further than MAX_FILE bytes."""
    declared = request.headers.get("content-length", "")
    too_big = Answer(413, f"not a submission bundle (larger than {MAX_FILE >> 20} MB)")
    if declared.isdigit() and int(declared) > MAX_FILE:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FILE:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the login's, the logout's): at most 4 KB, each field once."""
    data, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 4096:
            raise Answer(413, "a form of more than 4 KB")
        data.append(chunk)
    fields = parse_qs(b"".join(data).decode("utf-8", "replace"), max_num_fields=4)
    return {name: values[0] for name, values in fields.items() if len(values) == 1}


def _refused(status: int, why: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"state": "refused", "why": why}, status, headers=headers)


def _logged(request: Request, status: int, why: str) -> None:
    client = request.client.host if request.client else "?"
    log.warning("%s %s from %s: %s", status, request.url.path, client, printable(why))


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang", "")
    if asked in LANGS:
        return asked
    accepted = request.headers.get("accept-language", "").lower()
    return next((lang for lang in LANGS if accepted.startswith(lang)), "en")


def _template(name: str, lang: str) -> Any:
    from ..report import template

    return template(name, lang)


def _fragments(boards: list[Board], keys: set[str], lang: str) -> dict[str, Any]:
    """The rows of ``keys`` and the pass rates of their boards, as HTML rendered by the
    boards' own macros."""
    macros = _template("live_rows.html", lang).module
    rows, rates = {}, {}
    for board in boards:
        names = [name for name, key in board.keys.items() if key in keys]
        rows.update({board.keys[n]: str(macros.row(board.row(n, lang))) for n in names})
        if names:
            rates[board.rates_key] = str(macros.rate_bars(board.rates(lang), board.rates_key))
    return {"rows": rows, "rates": rates}


def _attempt_html(live: Live, attempt_id: int, lang: str) -> str:
    from ..report import attempt_page

    attempt = live.store.attempt(attempt_id)
    rubric = live.store.rubric(attempt.rubric_id, attempt.rubric_digest)
    snapshot = live.store.snapshot(attempt.snapshot_digest) if attempt.snapshot_digest else None
    board = live.board_of(attempt.rubric_id)
    page = attempt_page(attempt, rubric, snapshot, board.sharing(attempt) if board else [], lang)
    return _template("attempt.html", lang).render(page=page, root="../")


def _student_html(live: Live, name: str, lang: str) -> str:
    from ..report import StudentPage, student_page

    sections = []
    for board in live.boards:
        attempts = live.store.attempts(board.rubric.id, name)
        shared = {a.id: others for a in attempts if (others := board.sharing(a))}
        sections += student_page(name, board.rubric, attempts, shared, lang).sections
    return _template("student.html", lang).render(page=StudentPage(name, sections), root="../")


def _headed(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def _session(token: str) -> str:
    """A session cookie: its expiry, signed with the instructor's token."""
    expiry = str(int(time.time()) + SESSION_HOURS * 3600)
    return f"{expiry}.{_mac(token, 'session', expiry)}"


def _session_ok(token: str, cookie: str) -> bool:
    expiry, _dot, mac = cookie.partition(".")
    return expiry.isdigit() and int(expiry) > time.time() and hmac.compare_digest(mac, _mac(token, "session", expiry))


def _csrf_of(token: str, cookie: str) -> str:
    return _mac(token, "csrf", cookie)


def _mac(token: str, purpose: str, value: str) -> str:
    return hmac.new(token.encode(), f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()
