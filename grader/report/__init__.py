"""The static HTML report of a results store: a class dashboard (``index.html``), one page per
student (``students/``) and one per attempt (``attempts/``). Offline: no scripts, no CDN;
charts and topology pictures are inline SVG drawn by the templates.

Every page is rendered from a typed context object with autoescaping on: nothing a student
controls (names, container names, command output) is ever marked safe, and every text a page
writes is ``printable`` (a bidi override or an escape is shown as ``\\u202e``, ``\\x1b``). Student
and attempt pages are in the language asked (``lang``: the rubric's titles and hints, the
catalog's words and messages); the class dashboard is the instructor's, in English.

Each student's and attempt's page is made on its own: one that cannot be made from what the store
holds (a snapshot damaged, or imported before bundles' watch fields were checked) is written as a
page saying why, and the site is complete.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, TemplateError
from markupsafe import Markup

from .. import __version__, facts
from ..errors import ODD_DATA, StoreError
from ..evaluate import localised
from ..i18n import translations, translator
from ..outcome import CheckResult
from ..provenance import NOT_VERIFIED, attempt_identity, identity, same_daemon, shared_by
from ..rubric.model import Rubric
from ..snapshot import ProbeResult, Snapshot
from ..standing import Mode, Standing, standing, standings
from ..store import Attempt, Store
from ..text import bounded, head, printable
from ..util import counted, first_problem, write_file
from . import charts, topology
from .charts import STATUS_CSS


def student_file(name: str) -> str:
    """A safe, stable file name: a slug for people to read and a digest so names never collide."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "student"
    return f"students/{slug}-{hashlib.sha256(name.encode()).hexdigest()[:10]}.html"


def attempt_file(attempt: Attempt) -> str:
    return f"attempts/{attempt.id}.html"


def shown(value: Any) -> str:
    """Expected and actual values as readable text (JSON for structures, a dash for nothing),
    each text in them cut to ``text.SHORT`` characters (the stored value stays whole)."""
    if value is None:
        return "—"
    value = bounded(value)
    return value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)


def score_text(score: float | None, max_score: float | None = None) -> str:
    if score is None:
        return "—"
    return f"{score:g}" if max_score is None else f"{score:g}/{max_score:g}"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- page contexts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    id: str
    title: str


@dataclass(frozen=True)
class HeatRow:
    student: str
    href: str
    score: str
    cells: list[str]  # one css class per column, "" without a result
    marks: list[str]  # what to check by hand: "identity not verified", "same daemon as budi"


@dataclass(frozen=True)
class Named:
    student: str
    href: str
    note: str = ""


@dataclass(frozen=True)
class RubricSection:
    rubric: Rubric
    mode: Mode
    columns: list[Column]
    rows: list[HeatRow]
    histogram: charts.BarChart
    rates: charts.BarChart
    graded: int  # students with a counted score
    mean: str
    unreachable: list[Named]
    not_attempted: list[Named]


@dataclass(frozen=True)
class IndexPage:
    generated_at: str
    grader_version: str
    students: int
    attempts: int
    sections: list[RubricSection]
    unreadable: list[str]  # why a rubric's section is missing: its stored rubric cannot be read


@dataclass(frozen=True)
class AttemptLink:
    attempt: Attempt
    href: str
    graded_at: str
    score: str
    identity: str  # verified, not verified (imports) or live
    identity_word: str  # the same in the page's language


@dataclass(frozen=True)
class StudentSection:
    rubric_id: str
    title: str
    mode: Mode
    counted: str  # the score under the mode
    best: str
    latest: str
    marks: list[str]  # as on the dashboard
    history: charts.Timeline
    attempts: list[AttemptLink]


@dataclass(frozen=True)
class StudentPage:
    student: str
    sections: list[StudentSection]


@dataclass(frozen=True)
class Evidence:
    key: str
    probe: ProbeResult | None  # None: the snapshot has no such probe


@dataclass(frozen=True)
class CheckView:
    result: CheckResult
    css: str
    points: str
    expected: str
    actual: str
    evidence: list[Evidence]


@dataclass(frozen=True)
class TaskView:
    title: str
    checks: list[CheckView]


@dataclass(frozen=True)
class AttemptPage:
    attempt: Attempt
    student_href: str
    rubric: Rubric
    graded_at: str
    score: str
    identity: str  # who sent it, as far as the grader knows
    same_daemon: list[Named]  # other students with an attempt from this daemon
    claimed: str  # an import's time of inspection, as its bundle claims it ("" for others)
    engine: str
    tasks: list[TaskView]
    observed: topology.Picture | None  # None: no snapshot (the daemon could not be read)
    expected: topology.Picture
    seen: list[SeenContainer]  # what `check --watch` saw of containers gone since (--rm)
    timeline: list[dict[str, Any]]  # the daemon's events `check --watch` saw, oldest first


@dataclass(frozen=True)
class FailedPage:
    """A student's or an attempt's page that could not be made, and why."""

    title: str
    crumbs: list[Named]
    problem: str


@dataclass
class SeenContainer:
    name: str
    image: str
    command: str
    networks: str
    links: str
    state: str


# -- building -----------------------------------------------------------------------------


@dataclass
class Site:
    """What the store holds, read once: the index and student pages are ready to render;
    attempt pages are made while writing (each reads its snapshot then)."""

    index: IndexPage
    students: dict[str, StudentPage]  # file -> page
    attempts: list[Attempt]
    shared: dict[int, list[str]]  # attempt id -> other students with an attempt from its daemon


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading a class makes some 100,000 small objects and no cyclic garbage; the garbage
    collector's passes over them took longer than the read itself (issue 4's benchmark)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@_collector_paused()
def load(store: Store, mode: Mode | None = None, lang: str = "en") -> Site:
    attempts = store.attempts()
    if not attempts:
        raise StoreError(f"no attempts in {store.url}: nothing to report (grade someone first)")
    names = store.students()
    shared = same_daemon(attempts)
    sections: list[RubricSection] = []
    unreadable: list[str] = []
    per_student: dict[str, list[StudentSection]] = {name: [] for name in names}
    for rubric_id in store.rubric_ids():
        try:
            rubric = store.rubric(rubric_id)
        except StoreError as exc:  # a damaged row: that rubric's section, never the other labs'
            unreadable.append(str(exc))
            continue
        counted = mode or rubric.mode
        found = standings([a for a in attempts if a.rubric_id == rubric_id], counted)
        sections.append(_section(rubric, counted, found, names, shared))
        for s in found:
            per_student[s.student].append(_student_section(rubric, counted, s, shared, lang))
    index = IndexPage(
        generated_at=when(datetime.now(UTC)),
        grader_version=__version__,
        students=len(names),
        attempts=len(attempts),
        sections=sections,
        unreadable=unreadable,
    )
    students = {student_file(n): StudentPage(n, per_student[n]) for n in names}
    return Site(index, students, attempts, shared)


def _section(
    rubric: Rubric, mode: Mode, found: list[Standing], names: list[str], shared: dict[int, list[str]]
) -> RubricSection:
    columns = [Column(c.id, c.title_in()) for _, c in rubric.checks()]
    counted = [s for s in found if s.latest is not None]
    passes = Counter(c.id for s in counted for c in s.checks if c.passed)
    rows = []
    for s in counted:
        status = {c.id: c.status for c in s.checks}
        rows.append(
            HeatRow(
                s.student,
                student_file(s.student),
                score_text(s.score),
                [STATUS_CSS.get(status.get(c.id, ""), "") for c in columns],
                marks(s, mode, shared, "en"),
            )
        )
    share = len(counted) or 1
    fractions = [s.score / s.max_score for s in counted if s.max_score]
    attempted = {s.student for s in found}
    return RubricSection(
        rubric=rubric,
        mode=mode,
        columns=columns,
        rows=rows,
        histogram=charts.histogram(fractions),
        rates=charts.rates([(c.id, c.title, passes[c.id] / share) for c in columns]),
        graded=len(counted),
        mean=f"{100 * sum(fractions) / len(fractions):.0f}%" if fractions else "—",
        unreachable=[Named(s.student, student_file(s.student), s.error) for s in found if s.error is not None],
        not_attempted=[Named(n, student_file(n)) for n in names if n not in attempted],
    )


def marks(s: Standing, mode: Mode, shared: dict[int, list[str]], lang: str) -> list[str]:
    """What an instructor should look at before trusting the standing's score."""
    _ = translator(lang)
    found = [_("identity not verified")] if identity(s, mode) == NOT_VERIFIED else []
    others = shared_by(s.attempts, shared)
    return found + ([_("same daemon as {names}").format(names=", ".join(others))] if others else [])


def identity_word(identity: str, lang: str) -> str:
    """``provenance``'s word for how attempts came in, in ``lang``."""
    _ = translator(lang)
    return {"live": _("live"), "verified": _("verified"), NOT_VERIFIED: _("not verified")}.get(identity, identity)


def _student_section(
    rubric: Rubric, mode: Mode, s: Standing, shared: dict[int, list[str]], lang: str
) -> StudentSection:
    _ = translator(lang)
    links = [
        AttemptLink(
            a,
            "../" + attempt_file(a),
            when(a.graded_at),
            score_text(a.score, a.max_score) if a.ok else _("error"),
            attempt_identity(a),
            identity_word(attempt_identity(a), lang),
        )
        for a in s.attempts
    ]
    points = [
        (
            a.graded_at,
            None if not a.ok else a.score / a.max_score if a.max_score else 0.0,
            f"{when(a.graded_at)}: {link.score}",
            link.href,
        )
        for a, link in zip(s.attempts, links, strict=True)
    ]
    return StudentSection(
        rubric_id=rubric.id,
        title=rubric.title_in(lang),
        mode=mode,
        counted=score_text(s.score, s.max_score) if s.latest else "—",
        best=score_text(s.best),
        latest=score_text(s.latest.score, s.latest.max_score) if s.latest else "—",
        marks=marks(s, mode, shared, lang),
        history=charts.timeline(points),
        attempts=links,
    )


def student_page(
    name: str, rubric: Rubric, attempts: list[Attempt], shared: dict[int, list[str]], lang: str = "en"
) -> StudentPage:
    """One student's page for one rubric, from their ``attempts`` (the live server's)."""
    s = standing(name, attempts, rubric.mode)
    return StudentPage(name, [_student_section(rubric, rubric.mode, s, shared, lang)] if attempts else [])


def attempt_page(
    attempt: Attempt, rubric: Rubric, snapshot: Snapshot | None, same: list[str], lang: str = "en"
) -> AttemptPage:
    probes, engine = (snapshot.probes, snapshot.engine) if snapshot else ({}, {})
    tasks = []
    for number, group in groupby(localised(attempt.checks, rubric, lang), key=lambda c: c.task):
        views = [
            CheckView(
                result=c,
                css=STATUS_CSS[c.status],
                points=score_text(c.points, c.max_points),
                expected=shown(c.expected),
                actual=shown(c.actual),
                evidence=[Evidence(key, probes.get(key)) for key in c.evidence],
            )
            for c in group
        ]
        task = rubric.task(number)
        title = task.title_in(lang) if task else str(number)
        tasks.append(TaskView(title, views))
    return AttemptPage(
        attempt=attempt,
        student_href="../" + student_file(attempt.student),
        rubric=rubric,
        graded_at=when(attempt.graded_at),
        score=score_text(attempt.score, attempt.max_score),
        identity=_identity_text(attempt, lang),
        same_daemon=[Named(name, "../" + student_file(name)) for name in same],
        claimed=snapshot.taken_at if snapshot and attempt.source == "import" else "",
        engine=f"Docker {engine.get('Version', '?')} (API {engine.get('ApiVersion', '?')})" if snapshot else "",
        tasks=tasks,
        observed=topology.layout(topology.observed(snapshot)) if snapshot else None,
        expected=topology.layout(topology.expected(rubric, attempt.checks, lang)),
        seen=[_seen(c) for c in snapshot.ephemeral] if snapshot else [],
        timeline=snapshot.timeline if snapshot else [],
    )


def _seen(container: dict[str, Any]) -> SeenContainer:
    state = container.get("State") if isinstance(container.get("State"), dict) else {}
    code = state.get("ExitCode")
    return SeenContainer(
        name=facts.name_of(container),
        image=facts.image_of(container),
        command=facts.command_of(container),
        networks=", ".join(sorted(facts.networks_of(container))) or facts.network_mode(container),
        links=", ".join(f"{target}:{alias}" for target, alias in facts.links_of(container)),
        state=f"{facts.state_of(container)}" + (f" ({code})" if isinstance(code, int) else ""),
    )


def _identity_text(attempt: Attempt, lang: str) -> str:
    _ = translator(lang)
    if attempt.identity == "verified":
        return _("verified: the bundle was sealed with this student's key")
    if attempt.identity == "unverified":
        return _("not verified: a bundle imported without the course secret (anyone may have sent it)")
    return _("the grader inspected the daemon itself")


@cache
def environment(lang: str = "en") -> Environment:
    """Templates whose ``_()`` says their words in ``lang`` (Jinja's i18n extension)."""
    env = Environment(
        loader=PackageLoader("grader.report"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_printable,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    env.filters["head"] = head  # a probe's output is kept up to 1 MB; a page shows its start
    env.filters["counted"] = counted  # the class dashboard's counts (the instructor's English)
    return env


def _printable(value: Any) -> Any:
    """Every value a page writes: text ``printable`` (tabs kept: a browser shows them as
    spaces), the templates' own markup (a macro's SVG) as it is."""
    return printable(value, tabs=True) if isinstance(value, str) and not isinstance(value, Markup) else value


def template(name: str, lang: str = "en") -> Template:
    return environment(lang).get_template(name)


Progress = Callable[[int, int], None]  # pages written, pages in all


@_collector_paused()
def write(site: Site, store: Store, out_dir: Path, progress: Progress | None = None, lang: str = "en") -> Path:
    """Write every page of the site, telling ``progress`` of each; returns index.html's path."""
    write_file(out_dir / "report.css", (Path(__file__).with_name("static") / "report.css").read_text())
    total = 1 + len(site.students) + len(site.attempts)
    for done, (file, html) in enumerate(_rendered(site, store, lang), 1):
        write_file(out_dir / file, html)
        if progress:
            progress(done, total)
    return out_dir / "index.html"


def _rendered(site: Site, store: Store, lang: str) -> Iterator[tuple[str, str]]:
    """(file, html) of every page: the index first, then students, then attempts."""
    yield "index.html", template("index.html").render(page=site.index, root="")
    student = template("student.html", lang)
    for file, page in site.students.items():
        yield file, _page(lambda page=page: student.render(page=page, root="../"), page.student, [], lang)
    attempt = template("attempt.html", lang)
    rubric_of = cache(store.rubric)
    snapshot_of = lru_cache(maxsize=32)(store.snapshot)  # attempts that share a snapshot are neighbours
    for a in site.attempts:

        def made(a: Attempt = a) -> str:
            snapshot = snapshot_of(a.snapshot_digest) if a.snapshot_digest else None
            page = attempt_page(a, rubric_of(a.rubric_id, a.rubric_digest), snapshot, site.shared.get(a.id, []), lang)
            return attempt.render(page=page, root="../")

        crumbs = [Named(a.student, "../" + student_file(a.student))]
        yield attempt_file(a), _page(made, f"#{a.id} · {a.student}", crumbs, lang)


def _page(made: Callable[[], str], title: str, crumbs: list[Named], lang: str) -> str:
    """The page ``made`` makes, or one saying why it could not be made."""
    try:
        return made()
    except (*ODD_DATA, TemplateError) as exc:  # TemplateError: a field a template asks for is missing
        page = FailedPage(title, crumbs, first_problem(exc))
        return template("failed.html", lang).render(page=page, root="../")


def build(
    store: Store, out_dir: str | Path, mode: Mode | None = None, progress: Progress | None = None, lang: str = "en"
) -> Path:
    """Read the store once and write the whole site (student and attempt pages in ``lang``);
    returns the path of index.html."""
    return write(load(store, mode, lang), store, Path(out_dir), progress, lang)
