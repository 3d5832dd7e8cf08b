"""Students' languages: every string the code and the report's templates mark for translation
has an Indonesian one in the catalog, with the same placeholders; the catalog has no entry the
code no longer uses; stored results keep their templates; the locale picks the language."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from grader.evaluate import evaluate, localised
from grader.i18n import LOCALE, Text, default_lang, say, stored
from grader.rubric import load
from grader.snapshot import Snapshot

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"
Message = str | tuple[str, ...]  # a plural's: its forms


def extracted() -> set[Message]:
    """What scripts/messages extracts: the same mapping file and keywords (a plural's message is
    its English forms)."""
    method_map, options_map = [], {}
    section = None
    for line in (ROOT / "babel.cfg").read_text().splitlines():
        if found := re.match(r"\[(\w+): (.+)\]", line):
            section = (found.group(2), found.group(1))
            method_map.append(section)
            options_map[section[0]] = {}
    found = extract_from_dir(ROOT / "grader", method_map, options_map, keywords={**DEFAULT_KEYWORDS, "Text": None})
    return {message for _, _, message, _, _ in found if message}


def catalog(lang: str) -> dict[Message, Message]:
    """Each entry's translation ("" while fuzzy or, for a plural, while a form is missing)."""
    with (LOCALE / lang / "LC_MESSAGES" / "grader.po").open("rb") as po:
        entries = read_po(po)
    return {m.id: ("" if m.fuzzy or not all(forms(m.string)) else m.string) for m in entries if m.id}


def forms(message: Message) -> tuple[str, ...]:
    return message if isinstance(message, tuple) else (message,)


def placeholders(template: Message) -> set[str]:
    """The names a message's forms fill in (each form the same)."""
    found = set()
    for form in forms(template):
        if "%(" in form:  # gettext's: %(name)s, %(count)d
            found |= set(re.findall(r"%\((\w+)\)[sd]", form))
        else:
            found |= {name for _, name, _, _ in string.Formatter().parse(form) if name}
    return found


def test_every_message_has_an_indonesian_translation() -> None:
    used, indonesian = extracted(), catalog("id")
    assert len(used) >= 130  # evaluator messages, hints, the checklist's and the report's words
    untranslated = sorted(m for m in used if not indonesian.get(m))
    assert untranslated == [], "run scripts/messages and translate these in grader/locale/id"
    assert sorted(set(indonesian) - used) == [], "entries the code no longer uses: run scripts/messages"


def test_translations_keep_the_placeholders() -> None:
    for english, indonesian in catalog("id").items():
        assert placeholders(english) == placeholders(indonesian), english


def test_say() -> None:
    hint = Text("start it again: docker start {name}", name="<redis>")
    assert hint == "start it again: docker start <redis>"
    assert say(hint, "en") == hint
    assert say(hint, "id") == "jalankan lagi: docker start <redis>"
    assert say("docker network connect x y", "id") == "docker network connect x y"  # commands stay as they are
    nested = Text("{message} (found {found}: a typo?)", message=Text("no network {name}", name="x"), found="'y'")
    assert say(nested, "id") == "tidak ada jaringan x (ada 'y': salah ketik?)"


def test_a_stored_text_says_the_same_after_a_round_trip() -> None:
    text = Text(
        "{message} (it is on {networks} instead)", message=Text("{name} is {state}", name="a", state="b"), networks="n"
    )
    back = Text.load(json.loads(json.dumps(stored(text))))
    assert back == text and say(back, "id") == say(text, "id")
    assert Text.load("plain") == "plain" and Text.load({"template": "{gone}", "values": {}}) == "{gone}"


@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.glob("*") if (p / "snapshot.json").exists()))
def test_results_keep_their_templates_and_read_in_indonesian(case: str) -> None:
    """Each result's message is its template said in English (or a value, as an /etc/hosts line);
    in Indonesian, every message and title is the catalog's and the rubric's, values kept."""
    rubric = load((GOLDEN / case / "rubric").read_text().strip())
    outcome = evaluate(rubric, Snapshot.from_json((GOLDEN / case / "snapshot.json").read_text()))
    english = set(catalog("id"))
    for c, translated in zip(outcome.checks, localised(outcome.checks, rubric, "id"), strict=True):
        assert Text.load(c.phrases["message"]) == c.message
        assert translated.title != c.title and translated.title == rubric_title(rubric, c.id)
        template = Text.load(c.phrases["message"])
        if isinstance(template, Text) and template.template in english:
            assert translated.message != c.message or not re.search("[a-z]{3}", template.template), c.message


def rubric_title(rubric, check_id: str) -> str:
    return next(c.title_in("id") for _, c in rubric.checks() if c.id == check_id)


@pytest.mark.parametrize(
    ("environ", "lang"),
    [
        ({"LANG": "id_ID.UTF-8"}, "id"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANG": "id_ID.UTF-8", "LC_ALL": "C"}, "en"),  # LC_ALL wins, as gettext reads it
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "id_ID"}, "id"),
        ({"LANGUAGE": "fr:id", "LANG": "en_US.UTF-8"}, "id"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
    ],
)
def test_the_language_defaults_from_the_locale(environ: dict[str, str], lang: str) -> None:
    assert default_lang(environ) == lang
