"""Text a student controls (names, commands, probe outputs, roster rows) on its way out.

To a regular expression, a message or a terminal it goes cut to a bounded head, so that no
container can make a check's work grow with the square of its size or fill a screen; to a
terminal or an XML report, with every character a terminal would act on, or a reader would
not see, written as an escape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# Characters of a command line, an HTTP body, a reply or a command's output that checks read
# and quote, and of a text a table cell shows: a lab's command is a line, and a regular
# expression with ``.*`` searches a text in up to n² steps (a 1 MB command took a minute).
HEAD = 4096


def head(text: str) -> str:
    """At most HEAD characters of ``text``, then ``…`` where it was cut (so a regular
    expression's ``$`` matches no artificial end, and a reader sees that more was there)."""
    return text if len(text) <= HEAD else text[:HEAD] + "…"


def printable(text: str) -> str:
    """``text`` with every unprintable character written as Python writes it in a literal
    (``\\x1b``, ``\\x9b``, ``\\x7f``, ``\\u202e``, ``\\t``, ``\\r``): the C0 and C1 controls, DEL,
    bidi overrides, zero-width and other format characters, surrogates, unassigned code points.
    Newlines stay, as line breaks: a multi-line message or hint is meant to be multi-line, and
    a newline moves no cursor out of a table cell. The result is also valid XML 1.0 text."""
    return "\n".join(line if line.isprintable() else "".join(map(_char, line)) for line in text.split("\n"))


def _char(char: str) -> str:
    return char if char.isprintable() else ascii(char)[1:-1]


def shown(text: str, style: str = "") -> Text:
    """Student text for rich: its head, printable, as a ``Text`` so it is never read as console
    markup (``bad[/]name`` is a name, not a closing tag). A ``Text`` rather than markup-escaped
    text, because rich's markup parser takes time quadratic in a run of backslashes."""
    from rich.text import Text  # here: code that reads results (exports, reports) never loads rich

    return Text(printable(head(text)), style=style)
