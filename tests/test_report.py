"""The HTML report: a store made of real attempts (the snapshots recorded on the bench,
evaluated with the bundled rubrics, and one real ``grader grade`` of lab 2), rendered and
opened in a real headless Chromium. Pages must load without console errors or failed
requests, every link must lead to a page that exists, and nothing a student controls may
run as markup. One screenshot per page type is saved (``reports/screenshots/`` when
GRADER_SCREENSHOTS is set)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from click.testing import CliRunner
from markupsafe import escape
from playwright.sync_api import Browser, Page

from grader import report
from grader.cli import main
from grader.evaluate import evaluate
from grader.rubric import load
from grader.snapshot import Snapshot
from grader.store import Store

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SCRIPT_NAME = "<script>alert(1)</script>"
HTML_CONTAINER = "<i>redis</i>"  # short enough to be drawn in full in the topology picture
HTML_OUTPUT = "<b>db</b><script>alert(3)</script>"


def recorded(case: str) -> Snapshot:
    return Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text())


def hostile(snapshot: Snapshot) -> Snapshot:
    """A recorded snapshot whose app container has a name, and whose probe an output, made of HTML."""
    containers = [dict(c) for c in snapshot.containers]
    app = next(c for c in containers if "katacoda" in c.get("Config", {}).get("Image", ""))
    app["Name"] = "/" + HTML_CONTAINER
    probes = {key: p.model_copy(update={"output": HTML_OUTPUT}) for key, p in snapshot.probes.items()}
    return snapshot.model_copy(update={"containers": containers, "probes": probes}).sealed()


def record(store: Store, student: str, snapshot: Snapshot, rubric_id: str, minutes: int) -> int:
    rubric = load(rubric_id)
    outcome = evaluate(rubric, snapshot)
    return store.record(student, rubric, snapshot, outcome, "grade", T0 + timedelta(minutes=minutes))


def class_store(url: str) -> Store:
    """A small class: each golden case as a student, a student whose name is a script with a
    history of three attempts, an unreachable one, and one who did only lab 1."""
    store = Store(url)
    for n, case in enumerate(sorted(p.parent.name for p in GOLDEN.glob("*/snapshot.json"))):
        record(store, f"student {case}", recorded(case), (GOLDEN / case / "rubric").read_text().strip(), n)
    record(store, SCRIPT_NAME, recorded("networks-typo"), "docker-networks", 10)
    record(store, SCRIPT_NAME, hostile(recorded("networks-forgot-connect")), "docker-networks", 70)
    record(store, SCRIPT_NAME, recorded("networks-reference"), "docker-networks", 130)
    store.record_error("citra", load("docker-networks"), "batch", "daemon unreachable: <em>refused</em>", T0)
    return store


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("report")
    return report.build(class_store(f"sqlite:///{work / 'class.db'}"), work / "site").parent


def page_of(site: Path, name: str) -> Path:
    return site / report.student_file(name)


def test_site_layout(site: Path) -> None:
    assert (site / "index.html").is_file() and (site / "report.css").is_file()
    assert page_of(site, SCRIPT_NAME).is_file()
    cases = len(list(GOLDEN.glob("*/snapshot.json")))
    assert len(list((site / "attempts").glob("*.html"))) == cases + 4  # the script's three, citra's error
    html = (site / "index.html").read_text()
    assert "<script" not in html.replace("&lt;script", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("name", "start"),
    [(SCRIPT_NAME, "script-alert-1-script-"), ("../../etc/passwd", "etc-passwd-"), ("Ña Ñu", "a-u-"), ("", "student-")],
)
def test_student_file_names_are_safe(name: str, start: str) -> None:
    file = report.student_file(name)
    folder, base = file.split("/")
    assert folder == "students" and base.startswith(start) and base.endswith(".html")
    assert all(ch.isalnum() or ch in "-." for ch in base)
    assert report.student_file(name) != report.student_file(name + " ")


def test_the_dashboard_counts_students_and_attempts_in_english(site: Path, tmp_path: Path) -> None:
    students = len(list((site / "students").iterdir()))
    attempts = len(list((site / "attempts").iterdir()))
    assert f">{students} students · {attempts} attempts · generated" in (site / "index.html").read_text()
    store = Store(f"sqlite:///{tmp_path / 'class.db'}")
    record(store, "ani", recorded("networks-typo"), "docker-networks", 0)
    assert ">1 student · 1 attempt · generated" in report.build(store, tmp_path / "site").read_text()


def test_mode_override_is_shown(tmp_path: Path) -> None:
    store = class_store(f"sqlite:///{tmp_path / 'class.db'}")
    index = report.build(store, tmp_path / "site", mode="progress").read_text()
    assert index.count("mode progress") >= 2 and "mode final" not in index


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_cli_says_when_the_database_is_missing_or_empty(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    code, output = invoke("report", "--db", f"sqlite:///{missing}", "--out", str(tmp_path / "site"))
    assert code == 4 and f"no results database at {missing}" in output and "Traceback" not in output
    assert not missing.exists()
    Store(f"sqlite:///{tmp_path / 'empty.db'}")
    code, output = invoke("report", "--db", f"sqlite:///{tmp_path / 'empty.db'}", "--out", str(tmp_path / "site"))
    assert code == 4 and "no attempts in" in output and "nothing to report" in output


def test_cli_writes_the_site(tmp_path: Path) -> None:
    class_store(f"sqlite:///{tmp_path / 'class.db'}")
    code, output = invoke("report", "--db", f"sqlite:///{tmp_path / 'class.db'}", "--out", str(tmp_path / "out"))
    assert code == 0 and output.strip().endswith(f"wrote {tmp_path / 'out' / 'index.html'}")


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("GRADER_SCREENSHOTS"):
        folder = Path(__file__).resolve().parent.parent / "reports" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


class Visit:
    """A page opened in Chromium with everything that went wrong on it."""

    def __init__(self, browser: Browser, path: Path):
        self.page: Page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri())

    def links(self) -> list[Path]:
        hrefs = self.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        return [Path(unquote(urlparse(h).path)) for h in hrefs if urlparse(h).scheme == "file"]

    def close(self) -> None:
        self.page.close()


def crawl(browser: Browser, start: Path, screenshots: Path) -> dict[Path, list[Path]]:
    """Every page reachable from ``start``, with its links; one screenshot per page type."""
    seen: dict[Path, list[Path]] = {}
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        assert path.is_file(), f"broken link to {path}"
        visit = Visit(browser, path)
        assert visit.problems == [] and visit.dialogs == [], (path, visit.problems, visit.dialogs)
        kind = path.parent.name if path.name != "index.html" else "index"
        shot = screenshots / f"{kind}.png"
        if not shot.exists():
            visit.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        seen[path] = visit.links()
        todo += seen[path]
        visit.close()
    return seen


@pytest.mark.browser
def test_every_page_loads_cleanly_and_every_link_resolves(browser: Browser, site: Path, screenshots: Path) -> None:
    pages = crawl(browser, site / "index.html", screenshots)
    assert {p.relative_to(site).parts[0] for p in pages} == {"index.html", "students", "attempts"}
    assert len(pages) == 1 + len(list((site / "students").iterdir())) + len(list((site / "attempts").iterdir()))
    for kind in ("index", "students", "attempts"):
        assert (screenshots / f"{kind}.png").stat().st_size > 10_000


@pytest.mark.browser
def test_student_strings_show_as_text(browser: Browser, site: Path) -> None:
    index = Visit(browser, site / "index.html")
    # a heatmap row of lab 2, and "not attempted" of lab 1
    assert index.page.get_by_role("link", name=SCRIPT_NAME, exact=True).count() == 2
    assert index.page.get_by_text("daemon unreachable: <em>refused</em>").is_visible()
    assert index.page.locator("script, em").count() == 0
    student = Visit(browser, page_of(site, SCRIPT_NAME))
    assert student.page.get_by_role("heading", name=SCRIPT_NAME).is_visible()
    attempt_link = student.page.locator("table.attempts a").nth(1)  # the hostile snapshot
    attempt = Visit(browser, site / "students" / attempt_link.get_attribute("href"))
    observed = attempt.page.locator("svg.topology").first
    assert observed.get_by_text(HTML_CONTAINER, exact=True).is_visible()
    assert attempt.page.get_by_text(HTML_OUTPUT).first.is_visible()
    assert attempt.page.locator("script, i, b, main em").count() == 0
    for visit in (index, student, attempt):
        assert visit.dialogs == [] and visit.problems == []
        visit.close()


@pytest.mark.docker
@pytest.mark.browser
def test_report_of_a_real_grade(networks_lab, tmp_path: Path, browser: Browser) -> None:
    db = f"sqlite:///{tmp_path / 'grader.db'}"
    code, _ = invoke(
        "grade", "--rubric", "docker-networks", "--student", "alice", "--docker-host", networks_lab.host, "--db", db
    )
    assert code == 0
    code, output = invoke("report", "--db", db, "--out", str(tmp_path / "site"))
    assert code == 0
    attempt = Visit(browser, tmp_path / "site" / "attempts" / "1.html")
    observed = attempt.page.locator("svg.topology").first
    for name in ("backend-network", "frontend-network2", "redis"):
        assert observed.get_by_text(name, exact=True).is_visible()
    assert attempt.page.locator(".badge.p").count() == len(load("docker-networks").checks())
    assert attempt.problems == [] and attempt.dialogs == []
    attempt.close()


@pytest.mark.browser
def test_student_and_attempt_pages_in_indonesian(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, screenshots: Path
) -> None:
    """grader report --lang id: the student's pages say every word, title, message and hint in
    Indonesian (names, commands and values as they are); the dashboard stays English."""
    from test_i18n import catalog

    work = tmp_path_factory.mktemp("report-id")
    store = class_store(f"sqlite:///{work / 'class.db'}")
    site = report.build(store, work / "site", lang="id").parent
    # English that has an Indonesian translation of its own must not be on the pages.
    english = {
        m for m, said in catalog("id").items() if isinstance(m, str) and said != m and "{" not in m and "%(" not in m
    }  # plural entries (a tuple of forms) all carry a number
    student = Visit(browser, page_of(site, "student networks-typo"))
    assert student.page.locator("html").get_attribute("lang") == "id"
    assert student.page.get_by_role("heading", name="Jaringan Docker (DNS bawaan)").is_visible()
    assert student.page.get_by_role("columnheader", name="Percobaan").is_visible()
    attempt = Visit(browser, site / "students" / student.page.locator("table.attempts a").first.get_attribute("href"))
    shown = attempt.page.locator("main").inner_text()
    assert "1. Membuat jaringan" in shown and "jaringan bridge backend-network ada" in shown
    assert "tidak ada jaringan backend-network (ada 'backend_network': salah ketik?)" in shown
    assert "Saran: Jalankan: docker network create backend-network (perhatikan tanda hubung)" in shown
    assert attempt.page.locator(".badge").first.inner_text() in ("gagal", "lulus", "terblokir", "galat")
    for visit in (student, attempt):
        text = visit.page.locator("body").inner_text()
        left = sorted(word for word in english if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text))
        assert left == [], (visit.page.url, left)
        assert visit.problems == [] and visit.dialogs == []
    attempt.page.screenshot(path=str(screenshots / "attempt-id.png"), full_page=True)
    assert "<h1>Class dashboard</h1>" in (site / "index.html").read_text()
    for visit in (student, attempt):
        visit.close()


# -- what a student or a damaged store can put on a page -----------------------------------

BIDI_NETWORK = "\u202ekrowten-dnekcab"  # drawn raw, it reads "backend-network"
ESC_CONTAINER = "\x1b[31mred"
LONG_NAME = "x" * 10_000
BIDI_STUDENT = "evil\u202eexe.txt"


def invisible(snapshot: Snapshot) -> Snapshot:
    """The reference daemon with a network named with a bidi override, a container with an
    escape in its name and one with a 10,000-character name, and what ``check --watch`` saw of
    a container named with a bidi override."""
    raw = snapshot.model_dump(mode="json")
    twin = next(n for n in raw["networks"] if n["Name"] == "frontend-network2")
    raw["networks"].append({**twin, "Name": BIDI_NETWORK, "Id": "f" * 64})
    pinger = next(c for c in raw["containers"] if c["Config"]["Cmd"][:1] == ["ping"])
    pinger["Name"] = "/" + LONG_NAME
    env = next(c for c in raw["containers"] if c["Config"]["Cmd"] == ["env"])
    env["Name"] = "/" + ESC_CONTAINER
    raw["ephemeral"] = [{**env, "Name": "/\u202eder", "State": {"Status": "exited", "Running": False, "ExitCode": 0}}]
    raw["timeline"] = [
        {"time": "2026-11-02T09:00:00.000+00:00", "type": "container", "action": "start", "name": "\u202eder"}
    ]
    return Snapshot.model_validate(raw).sealed()


@pytest.mark.browser
def test_invisible_characters_are_shown_escaped_and_long_names_cut(browser: Browser, tmp_path: Path) -> None:
    """A bidi override, an escape and a 10,000-character name, as the dashboard, the attempt
    page's tables and its topology picture show them: escaped (``\\u202e``, ``\\x1b``), never
    acting on the text around them, and cut with "…" to fit where they are drawn."""
    store = Store(f"sqlite:///{tmp_path / 'class.db'}")
    record(store, BIDI_STUDENT, invisible(recorded("networks-reference")), "docker-networks", 0)
    site = report.build(store, tmp_path / "site").parent
    index = Visit(browser, site / "index.html")
    shown = index.page.locator("main").inner_text()
    assert "evil\\u202eexe.txt" in shown and "\u202e" not in shown
    attempt = Visit(browser, site / "attempts" / "1.html")
    shown = attempt.page.locator("main").inner_text()
    assert "\u202e" not in shown and "\x1b" not in shown and LONG_NAME not in shown
    observed = attempt.page.locator("svg.topology").first
    assert observed.get_by_text("\\u202ekrowten-dnekcab", exact=True).is_visible()
    assert observed.get_by_text("\\x1b[31mred", exact=True).is_visible()
    assert observed.get_by_text("x" * 21 + "…", exact=True).is_visible()
    for box in observed.locator("g.ctr, g.net").all():  # every name fits in its box
        text, rect = box.locator("text").bounding_box(), box.locator("rect").bounding_box()
        assert text and rect and rect["x"] <= text["x"] and text["x"] + text["width"] <= rect["x"] + rect["width"]
    assert attempt.page.locator("table.seen td", has_text="\\u202eder").count() == 1
    assert attempt.page.locator("table.timeline td", has_text="\\u202eder").count() == 1
    ping = attempt.page.locator("#check-ping-ran")
    assert "x" * 200 + "…" in ping.inner_text() and len(ping.inner_text()) < 2000  # message and actual
    assert Store(f"sqlite:///{tmp_path / 'class.db'}").attempts()[0].checks  # stored whole:
    stored = next(c for c in store.attempts()[0].checks if c.id == "ping-ran")
    assert LONG_NAME in json.dumps(stored.actual)
    for visit in (index, attempt):
        assert visit.problems == [] and visit.dialogs == []
        visit.close()


def damage(db: Path, student: str, change: str) -> None:
    """Change ``student``'s stored attempt behind the grader's back, as an old grader (which
    imported any bundle) or a hand in the database could have."""
    with sqlite3.connect(db) as connection:
        (attempt_id, digest) = connection.execute(
            "SELECT a.id, a.snapshot_digest FROM attempts a JOIN students s ON s.id = a.student_id WHERE s.name = ?",
            (student,),
        ).fetchone()
        if change.startswith("body "):
            connection.execute("UPDATE snapshots SET body = ? WHERE digest = ?", (change[5:], digest))
        else:
            column, value = change.split("=", 1)
            connection.execute(f"UPDATE attempts SET {column} = ? WHERE id = ?", (value, attempt_id))


DAMAGE = {  # student -> what is done to their stored attempt, and what its page says
    "ani": ("timeline", "This page could not be made", "'dict object' has no attribute 'time'"),
    "budi": ("body {", "This page could not be made", "cannot be read (EOF while parsing"),
    "citra": ("container_ids=[1", "could not be graded", "its stored container IDs cannot be read"),
    "dewi": ("score=many", "could not be graded", "its stored score cannot be read"),
    "eko": ("results=[{", "could not be graded", "its stored results cannot be read"),
    "gita": ("graded_at=not a date", "could not be graded", "attempt 6's stored time cannot be read ('not a date')"),
}


def damaged_store(db: Path) -> Store:
    """A class whose every student but fajar has one damaged row: ani's snapshot has the
    watch's timeline of events without fields (imported before bundles' watch fields were
    checked), budi's is not JSON, citra's, dewi's, eko's and gita's attempts have a damaged
    column (gita's time, which SQLAlchemy itself would fail to read)."""
    store = Store(f"sqlite:///{db}")
    cases = ["networks-typo", "networks-reference", "networks-forgot-connect", "networks-reference@28.5"]
    cases += ["networks-typo@28.5", "networks-reference@29-derived", "networks-forgot-connect@28.5"]
    for minutes, (student, case) in enumerate(zip([*DAMAGE, "fajar"], cases, strict=True)):
        snapshot = recorded(case)
        if student == "ani":
            snapshot = snapshot.model_copy(update={"timeline": [{}]}).sealed()
        record(store, student, snapshot, "docker-networks", minutes)
    for student, (change, _, _) in DAMAGE.items():
        if change != "timeline":
            damage(db, student, change)
    return store


def test_a_damaged_row_is_its_attempts_error_and_the_site_completes(tmp_path: Path) -> None:
    damaged_store(tmp_path / "class.db")
    code, output = invoke("report", "--db", f"sqlite:///{tmp_path / 'class.db'}", "--out", str(tmp_path / "site"))
    assert code == 0 and "Traceback" not in output, output
    site = tmp_path / "site"
    assert len(list((site / "attempts").iterdir())) == 7 and len(list((site / "students").iterdir())) == 7
    pages = {
        a.student: (site / report.attempt_file(a)).read_text()
        for a in Store(f"sqlite:///{tmp_path / 'class.db'}").attempts()
    }
    for student, (_, said, why) in DAMAGE.items():
        assert said in pages[student] and escape(why) in pages[student], student
    assert "This page could not be made" not in pages["fajar"] and "could not be graded" not in pages["fajar"]
    assert "<h2>Topology</h2>" in pages["fajar"]


DAMAGED_RUBRICS = {  # stored rubric content -> why it cannot be read
    "not json": "Expecting value: line 1 column 1 (char 0)",  # SQLite takes any text
    '{"id": 5}': "title: Field required",  # JSON, not a rubric (PostgreSQL's json column takes it)
}


def damaged_rubric_store(db: Path, content: str) -> str:
    """Lab 2 (ani) and the links lab (budi), lab 2's stored rubric changed to ``content`` by hand;
    returns the store's one line about it."""
    store = Store(f"sqlite:///{db}")
    record(store, "ani", recorded("networks-reference"), "docker-networks", 0)
    record(store, "budi", recorded("links-reference"), "docker-links", 1)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE rubrics SET content = ? WHERE rubric_id = 'docker-networks'", (content,))
    return f"rubric 'docker-networks' v1 in sqlite:///{db} cannot be read ({DAMAGED_RUBRICS[content]})"


@pytest.mark.parametrize("content", DAMAGED_RUBRICS)
def test_a_damaged_rubric_is_its_sections_error_and_the_other_labs_are_reported(tmp_path: Path, content: str) -> None:
    why = escape(damaged_rubric_store(tmp_path / "class.db", content))
    code, output = invoke("report", "--db", f"sqlite:///{tmp_path / 'class.db'}", "--out", str(tmp_path / "site"))
    assert code == 0 and "Traceback" not in output, output
    index = (tmp_path / "site" / "index.html").read_text()
    assert f'A section could not be made from what the results store holds: <span class="note">{why}</span>' in index
    assert '<section id="docker-links">' in index and '<section id="docker-networks">' not in index
    ani, budi = Store(f"sqlite:///{tmp_path / 'class.db'}").attempts()
    ani_page, budi_page = ((tmp_path / "site" / report.attempt_file(a)).read_text() for a in (ani, budi))
    assert "This page could not be made" in ani_page and why in ani_page
    assert "This page could not be made" not in budi_page and "<h2>Topology</h2>" in budi_page


def test_a_site_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """A full disk while writing (the index a link to /dev/full): exit 2, one line naming the file."""
    class_store(f"sqlite:///{tmp_path / 'class.db'}")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").symlink_to("/dev/full")
    result = CliRunner().invoke(
        main, ["report", "--db", f"sqlite:///{tmp_path / 'class.db'}", "--out", str(tmp_path / "site")]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"grader: cannot write {tmp_path / 'site' / 'index.html'}: No space left on device"
    ]
