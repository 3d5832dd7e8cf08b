"""Students' languages. Every sentence a student reads is written in English in the code and said
in the reader's language through a gettext catalog, ``grader/locale/LANG/LC_MESSAGES/grader.po``,
read with Babel the first time that language is asked for (no compile step: the ``.po`` ships in
the package as it is in the repository). English needs no catalog: the code's text is English.

A computed sentence is a ``Text``: its English, and the template and values it was made of, so that
it can be said in another language later, also once stored (``stored``/``Text.load``). Commands,
names and values are never translated: they are a template's values. Rubric titles and hints are
translated in the rubric itself (``title: {en: ..., id: ...}``).

Catalogs are kept up to date with ``scripts/messages`` (Babel's extract and update); a test fails
when a template in the code has no Indonesian translation."""

from __future__ import annotations

import gettext
import os
from collections.abc import Callable, Mapping
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from .text import SHORT, head

LANGS = ("en", "id")
DOMAIN = "grader"
LOCALE = Path(__file__).with_name("locale")


class Text(str):
    """An English sentence that keeps its template and values (a value may be a ``Text`` too).
    The sentence says each value cut to ``text.SHORT`` characters (a name in a sentence);
    the values are kept whole."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Text:
        text = super().__new__(cls, template.format(**_said(values)))
        text.template, text.values = template, values
        return text

    def dump(self) -> dict[str, Any]:
        """A JSON-ready form, read back by ``load``."""
        return {"template": self.template, "values": {k: stored(v) for k, v in self.values.items()}}

    @staticmethod
    def load(data: Any) -> str:
        """A text as ``stored`` wrote it: a ``Text`` again, or the plain text it was."""
        if isinstance(data, dict) and isinstance(data.get("template"), str):
            values = data.get("values")
            values = (
                {k: Text.load(v) if isinstance(v, dict) else v for k, v in values.items()}
                if isinstance(values, dict)
                else {}
            )
            try:
                return Text(data["template"], **values)
            except (KeyError, IndexError, ValueError):  # a stored row edited by hand: say it as it was
                return data["template"]
        return data if isinstance(data, str) else ""


def stored(text: Any) -> Any:
    """``text`` as results store it: a ``Text``'s template and values, anything else as it is."""
    return text.dump() if isinstance(text, Text) else text


def say(text: str, lang: str) -> str:
    """``text`` in ``lang``: a ``Text`` through the catalog (its values too, when they are
    ``Text``s), any other text as it is. A template without a translation stays English."""
    if not isinstance(text, Text) or lang == "en":
        return str(text)
    values = {k: say(v, lang) if isinstance(v, Text) else v for k, v in text.values.items()}
    return translator(lang)(text.template).format(**_said(values))


def _said(values: dict[str, Any]) -> dict[str, Any]:
    """A sentence's values as it says them: a nested sentence whole (it is bounded itself), a
    number as it is, anything else as its text cut to ``SHORT`` characters."""
    return {k: v if isinstance(v, Text | int | float) else head(str(v), SHORT) for k, v in values.items()}


def translator(lang: str) -> Callable[[str], str]:
    """The catalog's ``gettext`` for ``lang``: bind it to ``_`` so that Babel extracts the strings."""
    return translations(lang).gettext


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang``, compiled in memory from its ``.po`` (a few milliseconds, once)."""
    if lang == "en":
        return gettext.NullTranslations()
    # Imported here: only a run in another language pays for Babel (about 10 ms).
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with (LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they say English until reviewed
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def default_lang(environ: Mapping[str, str] = os.environ) -> str:
    """The language the user's locale asks for, as gettext reads it (``LANGUAGE``, ``LC_ALL``,
    ``LC_MESSAGES``, ``LANG``): ``id_ID.UTF-8`` is ``id``; English when it is none of ours."""
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable, "")
        if value:
            # LANGUAGE may list several (id:en); C and POSIX mean no language at all.
            for each in value.split(":"):
                code = each.split(".")[0].split("@")[0].split("_")[0].lower()
                if code in LANGS:
                    return code
            return "en"
    return "en"
