"""Computed hints in Indonesian: every translatable hint the checks make has a translation
with the same placeholders, and no translation is left unused."""

from __future__ import annotations

import re
import string
from pathlib import Path

from grader.i18n import INDONESIAN, Text, say

GRADER = Path(__file__).parent.parent / "grader"


def templates_in_checks() -> set[str]:
    source = "".join(p.read_text() for p in [*(GRADER / "checks").glob("*.py"), GRADER / "evaluate.py"])
    return set(re.findall(r'Text\(\s*"([^"]+)"', source))


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_hint_template_is_translated_and_every_translation_used() -> None:
    used = templates_in_checks()
    assert len(used) >= 15
    assert used == set(INDONESIAN)


def test_translations_keep_the_placeholders() -> None:
    for english, indonesian in INDONESIAN.items():
        assert placeholders(english) == placeholders(indonesian), english


def test_say() -> None:
    hint = Text("start it again: docker start {name}", name="<redis>")
    assert hint == "start it again: docker start <redis>"
    assert say(hint, "en") == hint
    assert say(hint, "id") == "jalankan lagi: docker start <redis>"
    assert say("docker network connect x y", "id") == "docker network connect x y"  # commands stay as they are
