"""The command line: each command parses, calls one core function, and maps the core's
errors to a one-line message and a documented exit code (docs/design.md, README)."""

from __future__ import annotations

import getpass
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__, signals
from .errors import BundleError, GraderError, RubricError, StoreError, UsageError
from .i18n import LANGS, default_lang
from .text import printable

if TYPE_CHECKING:
    from rich.console import Console

SHOWN = 20  # changed scores listed by regrade
EXIT_DOC = (
    "Exit codes: 0 all passed, 1 some check did not pass, 2 usage error, 3 daemon unreachable, "
    "4 graded but not stored (the result is shown), 78 invalid rubric; 130, 143, 129 on SIGINT, SIGTERM, SIGHUP."
)


class GraderGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        with signals.handled():
            try:
                return super().invoke(ctx)
            except RubricError as exc:
                for problem in exc.problems:
                    click.echo(printable(problem), err=True)  # a rubric's text may quote anything
                ctx.exit(exc.exit_code)
            except GraderError as exc:
                click.echo(f"grader: {printable(str(exc))}", err=True)  # may quote a name or a file
                ctx.exit(exc.exit_code)
            except KeyboardInterrupt as exc:
                signum = exc.signum if isinstance(exc, signals.Interrupted) else signal.SIGINT
                name = signal.Signals(signum).name
                click.echo(f"grader: interrupted ({name}); probe containers were removed", err=True)
                ctx.exit(128 + signum)


@click.group(cls=GraderGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade Docker networking labs on a real Docker daemon.

    \b
    Example:
      grader check --rubric docker-networks --lang id
    """


docker_host_option = click.option(
    "--docker-host",
    metavar="URL",
    default=None,
    help="Daemon to grade (default: as the docker SDK finds it: DOCKER_HOST, TLS variables, local socket).",
)
insecure_tcp_option = click.option(
    "--insecure-tcp",
    is_flag=True,
    help="Allow a tcp:// daemon without TLS (refused otherwise: plain TCP gives anyone on the way root on it).",
)
db_option = click.option(
    "--db",
    "db_url",
    metavar="URL",
    envvar="GRADER_DB",
    default=None,
    help="SQLAlchemy URL of the results store (default: $GRADER_DB, then sqlite:///grader.db).",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "junit"]), default="table", show_default=True
)
mode_option = click.option(
    "--mode",
    type=click.Choice(["final", "progress"]),
    default=None,
    help="final: the latest attempt counts; progress: a checkpoint proved in any stored attempt keeps its credit "
    "(default: the rubric's mode).",
)
lang_option = click.option(
    "--lang",
    type=click.Choice(LANGS),
    default=default_lang,
    help="Language of what students read: titles, messages, hints (default: from the locale, id for "
    "LANG=id_ID.UTF-8, else en).",
)
probe_image_option = click.option(
    "--probe-image",
    default="alpine",
    show_default=True,
    help="Image of the short-lived probe containers (must be on the daemon; never pulled).",
)


@main.command(epilog=EXIT_DOC)
@click.option(
    "--rubric",
    "rubric_ref",
    required=True,
    metavar="ID|FILE",
    help="Bundled rubric id or a rubric file.",
)
@click.option("--student", required=True, help="Whose daemon this is; the attempt is stored under this name.")
@db_option
@format_option
@mode_option
@docker_host_option
@insecure_tcp_option
@probe_image_option
def grade(
    rubric_ref: str,
    student: str,
    db_url: str | None,
    fmt: str,
    mode: str | None,
    docker_host: str | None,
    insecure_tcp: bool,
    probe_image: str,
) -> None:
    """Grade one student's daemon and store the attempt (instructors).

    \b
    Example:
      grader grade --rubric docker-networks --student alice --format json
    """
    from .grading import grade as run
    from .probe.runner import Cleanup

    with Cleanup() as cleanup:  # the probe containers' removal overlaps the output; the process waits for it
        graded = run(
            rubric_ref,
            student=student,
            db_url=db_url,
            docker_host=docker_host,
            probe_image=probe_image,
            mode=mode,
            insecure_tcp=insecure_tcp,
            cleanup=cleanup,
        )
        _emit(graded, fmt, "en")
        _finish(graded)


@main.command(epilog=EXIT_DOC)
@click.option("--rubric", "rubric_ref", default="docker-networks", show_default=True, metavar="ID|FILE")
@click.option("--task", type=int, default=None, help="Check one step only: its number (as in the task's title).")
@lang_option
@format_option
@click.option(
    "--verbose", "-v", is_flag=True, help="With --format table: every check in full tables, not the checklist."
)
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    envvar="GRADER_DB",
    default=None,
    help="SQLAlchemy URL of your progress store (default: $GRADER_DB, then grader.db in your user data folder, "
    "e.g. ~/.local/share/grader/grader.db).",
)
@mode_option
@docker_host_option
@probe_image_option
@click.option(
    "--submit",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write a submission bundle (FILE.json or FILE.json.gz) to hand in; the instructor runs grader import.",
)
@click.option(
    "--student",
    envvar="GRADER_STUDENT",
    default=None,
    help="Your name as your instructor's roster has it (default: $GRADER_STUDENT, then your login name).",
)
@click.option(
    "--key",
    envvar="GRADER_KEY",
    default=None,
    help="Your student key from your instructor (default: $GRADER_KEY): seals the bundle of --submit as yours.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Keep watching the daemon: the checklist is drawn again as you type docker commands (Ctrl-C ends it).",
)
@click.option(
    "--server",
    envvar="GRADER_SERVER",
    default=None,
    metavar="URL",
    help="Also send the result, sealed with --key, to your instructor's grader serve (default: $GRADER_SERVER); "
    "with --watch, each changed result. What cannot be sent yet is queued and sent later.",
)
@click.option(
    "--server-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="The certificate (PEM) your instructor's server is signed with, when it is their own.",
)
@click.option("--insecure-http", is_flag=True, help="Allow an http:// --server other than localhost (unencrypted).")
def check(
    rubric_ref: str,
    task: int | None,
    lang: str,
    fmt: str,
    verbose: bool,
    db_url: str | None,
    mode: str | None,
    docker_host: str | None,
    probe_image: str,
    submit: Path | None,
    student: str | None,
    key: str | None,
    watch: bool,
    server: str | None,
    server_ca: Path | None,
    insecure_http: bool,
) -> None:
    """Self-check your own daemon while you work on a lab (students).

    Prints a checklist that fits a terminal: a line per step with its score, the first step
    not done unfolded to its checks with each failing check's message and hint, and the next
    command to type. Exits 1 until every check passes; each run is kept in your progress store.

    \b
    Example:
      grader check --rubric docker-links --task 2 --lang id
      grader check --rubric docker-networks --submit lab2.json --student "Ani Lestari" --key K7QJ2MXRAB4D
      grader check --watch --lang id
      grader check --watch --server https://lab.example.edu:8443 --student "Ani Lestari" --key K7QJ2MXRAB4D
    """
    from .bundle import student_name, write
    from .grading import grade as run
    from .grading import student_store
    from .keys import typed_key
    from .probe.runner import Cleanup
    from .util import writable

    if submit and task is not None:
        raise UsageError("--submit hands in the whole lab: leave out --task")
    if submit and key and not student:
        raise UsageError("--key needs --student: the name your key was made for")
    name = student_name(student) if student else getpass.getuser()
    outbox = _outbox(server, name if student else None, key, server_ca, insecure_http, task) if server else None
    if watch:
        if submit or task is not None or fmt != "table":
            raise UsageError("--watch draws the whole checklist: leave out --submit, --task and --format")
        _watch(rubric_ref, name, db_url or student_store(), docker_host, probe_image, mode, lang, outbox)
        return
    seal_key = typed_key(key) if submit and key else None  # checked before the daemon is graded
    if submit:
        writable(submit)
    with Cleanup() as cleanup:  # as in grade
        graded = run(
            rubric_ref,
            student=name,
            source="check",
            db_url=db_url or student_store(),
            docker_host=docker_host,
            task=task,
            probe_image=probe_image,
            mode=mode,
            cleanup=cleanup,
        )
        _emit(graded, "checklist" if fmt == "table" and not verbose else fmt, lang)
        if submit:
            write(graded, submit, seal_key)
            sealed = f", sealed with {name}'s key" if seal_key else " (no --key: its sender cannot be verified)"
            click.echo(f"submission bundle written to {submit}{sealed}", err=True)
        if outbox is not None:
            outbox.put(graded)
            click.echo(printable(outbox.deliver().line()), err=True)
        _finish(graded)


def _outbox(
    server: str, student: str | None, key: str | None, ca: Path | None, insecure_http: bool, task: int | None
) -> Any:
    """``check --server``'s queue, once the options say who sends where."""
    from .keys import typed_key
    from .outbox import Outbox

    if task is not None:
        raise UsageError("--server takes the whole lab: leave out --task")
    if not student or not key:
        raise UsageError(
            "--server needs --student and --key (or GRADER_STUDENT, GRADER_KEY): your server knows you by them"
        )
    return Outbox(server, student, typed_key(key), ca=ca, insecure_http=insecure_http)


@main.command()
@click.option("--rubric", "rubric_ref", required=True, metavar="ID|FILE", help="The rubric as it is now.")
@click.option("--student", default=None, help="Only this student's attempts (default: everyone's).")
@db_option
def regrade(rubric_ref: str, student: str | None, db_url: str | None) -> None:
    """Re-evaluate stored attempts with the current rubric, without any daemon.

    Every stored attempt of the rubric's id is scored again from its stored snapshot, e.g.
    after fixing a rubric; the new results replace the old ones (the old rubric version
    stays stored, so nothing is lost).

    \b
    Example:
      grader regrade --rubric rubrics/docker-networks.yaml --db sqlite:///class.db
    """
    from rich.console import Console
    from rich.progress import Progress

    from .regrade import regrade as run

    bar = Progress(console=Console(stderr=True), transient=True)
    job = bar.add_task("regrading", total=None)

    def advance(done: int, total: int) -> None:
        bar.start()  # shown once there is work: a bad --db or rubric is only its error line
        bar.update(job, completed=done, total=total)

    try:
        done = run(rubric_ref, db_url=db_url, student=student, progress=advance)
    finally:
        bar.stop()
    from .util import counted

    click.echo(
        f"regraded {counted(done.attempts, 'attempt')} of {counted(done.students, 'student')}; "
        f"{counted(len(done.changed), 'score')} changed"
        + (f"; {counted(done.skipped, 'attempt')} without a snapshot skipped" if done.skipped else "")
    )
    for name, old, new in done.changed[:SHOWN]:
        click.echo(f"  {printable(name)}: {old:g} -> {new:g}")
    if len(done.changed) > SHOWN:
        click.echo(f"  … and {len(done.changed) - SHOWN} more (grader export shows every score)")


@main.command()
@db_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="reports",
    show_default=True,
    help="Folder of the site (DIR/index.html).",
)
@mode_option
@lang_option
def report(db_url: str | None, out_dir: str, mode: str | None, lang: str) -> None:
    """Write a static HTML report of the stored attempts (works offline, no CDN).

    A class dashboard per rubric (score distribution, pass rate per check, a students x
    checks heatmap, who is unreachable or has not attempted), a page per student (attempt
    history, best and latest score) and a page per attempt (every check with its evidence,
    the observed topology next to the expected one). Student and attempt pages are in the
    language of --lang; the dashboard is in English.

    \b
    Example:
      grader report --db sqlite:///class.db --out reports/ --lang id
    """
    from .report import build
    from .store import Store
    from .util import writable

    writable(Path(out_dir), folder=True)
    store = Store(db_url, create=False, read_only=True)
    with _counter("writing pages") as tell:
        index = build(store, out_dir, mode=mode, progress=tell, lang=lang)
    click.echo(f"wrote {index}")


@contextmanager
def _counter(doing: str) -> Iterator[Callable[[int, int], None]]:
    """``doing done/total`` on a terminal's stderr while the block runs, erased at its end; with
    click alone, as a command that reads results never loads rich (its import is most of a report
    of a small class)."""
    shown = sys.stderr.isatty()

    def tell(done: int, total: int) -> None:
        if shown:
            click.echo(f"\r{doing} {done}/{total}", err=True, nl=False)

    try:
        yield tell
    finally:
        if shown:
            click.echo("\r\x1b[K", err=True, nl=False)


def _finish(graded: Any) -> None:
    """Exit as the result says; a result that could not be stored was shown, and says why."""
    if graded.store_error:
        click.echo(f"grader: graded, not stored: {graded.store_error}", err=True)
        sys.exit(StoreError.exit_code)
    sys.exit(0 if graded.outcome.passed else 1)


def _watch(
    rubric_ref: str,
    student: str,
    db_url: str,
    docker_host: str | None,
    probe_image: str,
    mode: str | None,
    lang: str,
    outbox: Any = None,
) -> None:
    """``check --watch``: the checklist, drawn again as the daemon changes, until interrupted.
    A terminal gets it in place (rich's Live); a pipe gets each new checklist after the last.
    With an ``outbox``, each changed result is sent; the last line says the server's state."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    from . import render
    from .watch import Watch

    console = Console()
    live = Live(console=console, auto_refresh=False, transient=False) if console.is_terminal else None
    shown: list[Any] = []

    def draw(view: Any, pending: int) -> None:
        if sender is not None:
            view = Group(view, Text(sender.outbox.state.line(), style="dim"))
        if live is not None:
            live.update(view, refresh=True)
        elif not pending:
            console.print(view)

    def show(graded: Any, note: str, pending: int) -> None:
        view = render.watch_view(graded, lang, note, pending)
        shown[:] = [view]
        if sender is not None and not pending:
            sender.offer(graded)
        draw(view, pending)
        if graded.store_error:
            console.print(f"grader: not stored: {printable(graded.store_error)}", style="red")

    def changed() -> None:  # the server's state, from the sender's thread
        if shown and live is not None:
            draw(shown[0], 0)
        elif sender is not None:
            console.print(sender.outbox.state.line(), style="dim", markup=False, highlight=False)

    sender = None
    if outbox is not None:
        from .outbox import Sender

        sender = Sender(outbox, changed)

    watcher = Watch(
        rubric_ref,
        student=student,
        show=show,
        docker_host=docker_host,
        db_url=db_url,
        probe_image=probe_image,
        mode=mode,
    )
    try:
        if live is None:
            watcher.run()
            return
        with live:
            watcher.run()
    finally:
        if sender is not None:
            sender.stop()


def _echo(text: str, nl: bool = True) -> None:
    """``text`` on stdout; a stdout that cannot take it (``> /dev/full``) is a usage error."""
    try:
        click.echo(text, nl=nl)
    except OSError as exc:
        raise UsageError(f"cannot write to standard output: {exc.strerror or exc}") from None


def _emit(graded: Any, fmt: str, lang: str) -> None:
    from . import render

    if fmt == "json":
        _echo(render.as_json(render.in_lang(graded, lang)))
    elif fmt == "junit":
        _echo(render.as_junit(render.in_lang(graded, lang)))
    else:
        from rich.console import Console  # a terminal's formats only

        if fmt == "checklist":
            Console().print(render.checklist(graded, lang))
        else:
            render.print_table(graded, Console(), lang)


class ExportFormats(click.Choice):
    """The export formats' names, read from their table (``export.FORMATS``) only when a command
    line is parsed or its help shown: ``grader --help`` never loads the exporters."""

    def __init__(self) -> None:
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        from .export import FORMATS

        return tuple(FORMATS)

    @choices.setter
    def choices(self, _: object) -> None:  # click's __init__ sets it; the table is the truth
        pass


@main.command()
@db_option
@click.option(
    "--format",
    "fmt",
    type=ExportFormats(),
    required=True,
    help="Output format (each is described in docs/cli.md, Export formats).",
)
@click.option("--rubric", "rubric_id", metavar="ID", default=None, help="Rubric id (default: the only one stored).")
@click.option(
    "--student", default=None, help="Only this student; required for gradescope and prairielearn (per submission)."
)
@click.option(
    "--roster",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="The class roster CSV, for moodle and canvas: its email or sis_id column identifies each student.",
)
@click.option("--per-check", is_flag=True, help="A CSV column per check (csv, moodle, canvas).")
@mode_option
@lang_option
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="FILE", help="Write to FILE, not stdout.")
def export(
    db_url: str | None,
    fmt: str,
    rubric_id: str | None,
    student: str | None,
    roster: Path | None,
    per_check: bool,
    mode: str | None,
    lang: str,
    out: Path | None,
) -> None:
    """Export the stored standings: gradebook CSVs, JSON, or an autograder's results.json.

    csv: one row per student (points per task, total, max, status, graded_at, identity,
    same_daemon_as). moodle, canvas: the CSV their grade import reads, identified by the
    roster's email or sis_id. json: every student's score and per-check results.
    gradescope, prairielearn: one student's results.json. A student the grader could not
    reach is exported with the reason (an empty score), never as a zero.

    \b
    Example:
      grader export --db sqlite:///class.db --format csv --out grades.csv
      grader export --db sqlite:///class.db --format canvas --roster class.csv --per-check
      grader export --db sqlite:///class.db --format prairielearn --student ani --out results.json
    """
    from .export import export as run
    from .util import writable, write_file

    if out:
        writable(out)
    text = run(
        fmt,
        db_url=db_url,
        rubric_id=rubric_id,
        mode=mode,
        student=student,
        roster=roster,
        per_check=per_check,
        lang=lang,
    )
    if out:
        write_file(out, text)
    else:
        _echo(text, nl=False)


@main.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--rubric",
    "rubric_ref",
    default=None,
    metavar="ID|FILE",
    help="Rubric to score with (default: the installed rubric of each bundle's rubric id).",
)
@db_option
@click.option(
    "--secret",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Course secret of grader keys: a bundle must be sealed with its student's key (default: not verified).",
)
@click.option("--student", default=None, help="Store the one FILE under this name (with --secret: NAME's key).")
def import_(
    files: tuple[Path, ...], rubric_ref: str | None, db_url: str | None, secret: Path | None, student: str | None
) -> None:
    """Store students' submission bundles (from grader check --submit) as attempts.

    Each file is verified (format, snapshot and bundle digests) and its snapshot scored
    again with the instructor's rubric; the student's own scores are never trusted. With
    --secret, a bundle must be sealed with the key of its student (grader keys); without,
    its attempt is marked "identity not verified" in reports and exports. An attempt is
    placed in the student's history at the time of its import. A bundle already imported
    for that student is skipped. Bad files are named on stderr, change nothing, and make
    the exit code 1.

    \b
    Example:
      grader import submissions/*.json --secret course.key --db sqlite:///class.db
    """
    from .importing import import_bundles

    done = import_bundles(list(files), rubric_ref=rubric_ref, db_url=db_url, secret=secret, student=student)
    for line in done.imported + done.skipped:
        click.echo(printable(line))  # names a student and a file, both the student's choice
    for line in done.failed:
        click.echo(f"grader: {printable(line)}", err=True)
    click.echo(f"imported {len(done.imported)}, skipped {len(done.skipped)}, failed {len(done.failed)}")
    sys.exit(BundleError.exit_code if done.failed else 0)


@main.command()
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--secret",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="The course secret (made when missing: 32 random bytes, readable by you only). Keep it; never hand it out.",
)
def keys(roster: Path, secret: Path) -> None:
    """Print student,key for every student of ROSTER: the key each student gives to
    grader check --submit --key, so that grader import --secret knows who sent a bundle.

    Only the roster's student column is read. The same secret gives the same keys every
    time; a new secret gives new keys.

    \b
    Example:
      grader keys class.csv --secret course.key > keys.csv
    """
    import csv

    from .keys import roster_keys

    pairs, created = roster_keys(roster, secret)
    if created:
        click.echo(f"grader: made a new course secret in {secret}", err=True)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["student", "key"])
    out.writerows(pairs)


@main.command(
    epilog="Exit codes: 0 every daemon was graded, 1 some could not be (reasons stored), 2 usage error, "
    "4 the store failed (the batch stopped: no daemon was started after it)."
)
@click.argument("roster", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rubric", "rubric_ref", required=True, metavar="ID|FILE", help="Bundled rubric id or a rubric file.")
@db_option
@click.option("--workers", type=int, default=4, show_default=True, help="Daemons graded at the same time.")
@click.option("--timeout", type=float, default=60, show_default=True, help="Seconds a daemon may take to be graded.")
@click.option("--only-failed", is_flag=True, help="Grade only students without a successful attempt of this rubric.")
@click.option(
    "--worker",
    "scale_out",
    is_flag=True,
    help="Scale-out worker: share the batch with other workers through a PostgreSQL --db (row locks).",
)
@click.option("--batch", "batch_id", help="Name of a scaled-out batch (default: rubric + roster digest).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="Class CA for tcp:// daemons.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Class client certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Class client key.")
@insecure_tcp_option
@probe_image_option
def batch(
    roster: Path,
    rubric_ref: str,
    db_url: str | None,
    workers: int,
    timeout: float,
    only_failed: bool,
    scale_out: bool,
    batch_id: str | None,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    insecure_tcp: bool,
    probe_image: str,
) -> None:
    """Grade every student's daemon in ROSTER and store each attempt (instructors).

    ROSTER is a CSV file with the columns student, docker_host (unix://PATH,
    tcp://HOST:PORT or ssh://USER@HOST) and optionally tls_ca, tls_cert, tls_key (paths
    relative to the roster; a row without them uses --tls-*). A daemon that cannot be
    graded gets a stored error with its reason, never a zero. Ctrl-C stops cleanly.

    \b
    Example:
      grader batch class.csv --rubric docker-networks --db sqlite:///class.db --workers 8
      grader batch class.csv --rubric docker-networks --db postgresql+psycopg://grader@db/class --worker
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .batch import Batch, batch_name
    from .collect import TLSFiles

    tls_given = [tls_ca, tls_cert, tls_key]
    if any(tls_given) and not all(tls_given):
        raise click.UsageError("give all of --tls-ca, --tls-cert and --tls-key, or none")
    class_tls = TLSFiles(tls_ca, tls_cert, tls_key) if tls_ca and tls_cert and tls_key else None
    console = Console(stderr=True)
    # markup=False: the description holds a student's name (``bad[/]name`` is a name, not a tag).
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    run = Batch(rubric_ref, roster, db_url, workers, timeout, probe_image, class_tls, insecure_tcp=insecure_tcp)
    with Progress(*columns, console=console, transient=True) as bar:
        job = bar.add_task("grading", total=None)

        def advance(result: Any, done: int, total: int) -> None:
            bar.update(job, completed=done, total=total, description=f"grading (last: {printable(result.student)})")

        run.progress = advance
        try:
            if scale_out:
                name = batch_id or batch_name(run.rubric, roster)
                results = run.work(name, only_failed)
                states = list(run.store.jobs(name).values())
                console.print(f"batch {name}: {states.count('done')} done, {states.count('pending')} pending")
            else:
                results = run.run(only_failed)
        except (KeyboardInterrupt, StoreError):
            bar.stop()
            _batch_summary(run.results, console)
            raise  # the store's failure is said last, and no daemon was started after it
    _batch_summary(results, console)
    sys.exit(0 if all(r.status == "graded" for r in results) else 1)


def _batch_summary(results: list[Any], console: Console) -> None:
    from rich.console import Console
    from rich.table import Table

    from .text import shown
    from .util import counted

    table = Table(title="batch")
    for column in ("student", "status", "score", "reason", "seconds"):
        table.add_column(column, overflow="fold")
    for r in sorted(results, key=lambda r: r.student):
        score = f"{r.score:g}/{r.max_score:g}" if r.score is not None else ""
        style = "green" if r.status == "graded" else "red"
        # The roster's names and the daemons' errors are shown as they are: never console markup.
        table.add_row(shown(r.student), f"[{style}]{r.status}[/]", score, shown(r.error or ""), f"{r.seconds:.1f}")
    Console().print(table)
    graded = sum(r.status == "graded" for r in results)
    console.print(f"graded {graded} of {counted(len(results), 'daemon')}; {len(results) - graded} could not be graded")


@main.command(
    epilog="Exit codes: 0 stopped (Ctrl-C or SIGTERM), 2 usage error, 4 the store cannot be opened, 78 invalid rubric."
)
@db_option
@click.option("--roster", type=click.Path(dir_okay=False, path_type=Path), required=True, metavar="FILE")
@click.option(
    "--secret",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    metavar="FILE",
    help="The course secret of grader keys: a submission must be sealed with its student's key.",
)
@click.option(
    "--rubric",
    "rubric_refs",
    multiple=True,
    default=["docker-networks"],
    show_default=True,
    metavar="ID|FILE",
    help="A lab of the class (repeat it for several): each submission is scored with the one it names.",
)
@click.option("--bind", default="127.0.0.1:8000", show_default=True, metavar="HOST:PORT")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The instructor's login token (default: a new one, printed at start).",
)
@click.option(
    "--stuck-after",
    type=click.FloatRange(min=0.5),
    default=10,
    show_default=True,
    metavar="MIN",
    help="Minutes without a rising score before a student is shown stuck.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0, max=16),
    default=None,
    metavar="N",
    help="Processes that verify and score submissions beside the server's own "
    "(default: the machine's cores, none on one core; 0: in the server's process).",
)
def serve(
    db_url: str | None,
    roster: Path,
    secret: Path,
    rubric_refs: tuple[str, ...],
    bind: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    token_file: Path | None,
    stuck_after: float,
    workers: int | None,
) -> None:
    """Serve a live class: students' checks stream to your dashboard (instructors).

    Students run grader check --watch --server URL; each change is verified as grader
    import --secret does (their key, the digests), scored again with the --rubric it names
    and stored (source live). The dashboard at / shows a row per roster student and lab,
    updated within a second; log in with the token printed at start.

    \b
    Example:
      grader serve --db sqlite:///class.db --roster class.csv --secret course.key --bind 0.0.0.0:8443 \\
        --tls-cert server.pem --tls-key server.key --rubric docker-links --rubric docker-networks
    """
    from datetime import timedelta

    from .roster import roster_students
    from .serve import Bind
    from .serve import serve as run
    from .serve.checking import default_workers

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    run(
        db_url=db_url,
        students=roster_students(roster),
        secret=secret,
        rubric_refs=list(rubric_refs),
        bind=Bind.parse(bind),
        tls=(tls_cert, tls_key) if tls_cert and tls_key else None,
        token_file=token_file,
        stuck_after=timedelta(minutes=stuck_after),
        workers=default_workers() if workers is None else workers,
    )


@main.group()
def rubrics() -> None:
    """List, show, validate or test rubrics, or print their JSON Schema (also: grader rubric).

    \b
    Example:
      grader rubrics validate rubrics/*.yaml
      grader rubric test docker-networks
    """


main.add_command(rubrics, "rubric")  # `grader rubric test`, as rubric authors say it


@rubrics.command("list")
def rubrics_list() -> None:
    """List the bundled rubrics.

    \b
    Example:
      grader rubrics list
    """
    from .rubric import bundled, load
    from .util import counted

    for rubric_id, path in sorted(bundled().items()):
        rubric = load(path)
        click.echo(f"{rubric_id}\tv{rubric.version}\t{counted(len(rubric.checks()), 'check')}\t{rubric.title_in()}")


@rubrics.command("show")
@click.argument("ref", metavar="ID|FILE")
def rubrics_show(ref: str) -> None:
    """Print a rubric's tasks and checks.

    \b
    Example:
      grader rubrics show docker-links
    """
    from .rubric import load

    rubric = load(ref)
    click.echo(f"{rubric.id} v{rubric.version}: {rubric.title_in()} (mode: {rubric.mode})")
    for number, task in zip(rubric.numbers, rubric.tasks, strict=True):
        click.echo(f"  task {number}: {task.title_in()}")
        for c in task.checks:
            needs = f"  needs {', '.join(c.needs)}" if c.needs else ""
            click.echo(f"    {c.id:<22} {c.points:>4g} pt  {c.kind:<14} {c.when:<10} {c.title_in()}{needs}")


@rubrics.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def rubrics_validate(files: tuple[str, ...]) -> None:
    """Validate rubric files; every problem is printed as file:line:col: path: message.

    \b
    Example:
      grader rubrics validate rubrics/*.yaml
    """
    from .rubric import load
    from .util import counted

    problems: list[str] = []
    for file in files:
        try:
            rubric = load(file)
            click.echo(f"{file}: ok ({rubric.id} v{rubric.version}, {counted(len(rubric.checks()), 'check')})")
        except RubricError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RubricError(problems)


@rubrics.command("test")
@click.argument("ref", metavar="ID|FILE")
@click.option(
    "--docker-host",
    metavar="URL",
    default=None,
    help="Play the cases on this daemon, which must be empty (default: a throwaway private engine; needs root).",
)
@probe_image_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit"]), default="table", show_default=True)
def rubrics_test(ref: str, docker_host: str | None, probe_image: str, fmt: str) -> None:
    """Prove a rubric right: its reference must get full marks, each mistake fail exactly its checks.

    Each case (the rubric's `reference:` commands, then each of its `mistakes:`) is played
    with the docker CLI on a clean daemon and graded. Without --docker-host the daemon is a
    throwaway private engine (this machine's dockerd in a network namespace of its own, the
    lab's images copied in from the local daemon, never pulled), removed at the end.

    \b
    Example:
      grader rubric test docker-networks
      grader rubric test my-lab.yaml --docker-host unix:///run/empty-docker.sock --format junit
    """
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from . import selftest

    console = Console(stderr=True)
    # Off the terminal it would leave a blank line before an error's one line.
    spinner = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with spinner as bar:
        job = bar.add_task("starting", total=None)
        rubric, results = selftest.test_rubric(
            ref,
            docker_host=docker_host,
            probe_image=probe_image,
            progress=lambda name: bar.update(job, description=f"playing {printable(name)}"),
        )
    if fmt == "json":
        click.echo(selftest.as_json(rubric, results))
    elif fmt == "junit":
        click.echo(selftest.as_junit(rubric, results))
    else:
        Console().print(selftest.as_table(results))
    sys.exit(0 if all(r.held for r in results) else 1)


@rubrics.command("schema")
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True)
def rubrics_schema(fmt: str) -> None:
    """Print the rubric JSON Schema (generated from the models), for editors.

    \b
    Example:
      grader rubrics schema > rubric.schema.json
    """
    import yaml

    from .rubric import json_schema

    schema = json_schema()
    click.echo(json.dumps(schema, indent=2) if fmt == "json" else yaml.safe_dump(schema, sort_keys=False))


if __name__ == "__main__":
    main()
