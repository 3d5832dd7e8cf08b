"""Text a student controls (names, commands, probe outputs, roster rows) on its way out.

To a regular expression, a message or a terminal it goes cut to a bounded head, so that no
container can make a check's work grow with the square of its size or fill a screen; a name
within a sentence, a table cell or a value shown is cut shorter still (``SHORT``). To a
terminal, an HTML page, a CSV or an XML report it goes through ``printable``: every character
a terminal would act on, or a reader would not see (a bidi override that reverses the text
after it), written as an escape. One function for every way out, so that a name reads the
same in each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

# Characters of a command line, an HTTP body, a reply or a command's output that checks read
# and quote, and of a text a table cell shows: a lab's command is a line, and a regular
# expression with ``.*`` searches a text in up to n² steps (a 1 MB command took a minute).
HEAD = 4096
# Characters of a name (or any one value) shown within a sentence or a cell: a student's name
# is at most as long, Docker's names are far shorter; a 10,000-character container name was
# shown whole in every message and value that quoted it.
SHORT = 200


def head(text: str, size: int = HEAD) -> str:
    """At most ``size`` characters of ``text``, then ``…`` where it was cut (so a regular
    expression's ``$`` matches no artificial end, and a reader sees that more was there)."""
    return text if len(text) <= size else text[:size] + "…"


def bounded(value: Any, size: int = SHORT) -> Any:
    """``value`` (text, or JSON-like lists and objects of it) with every text cut to ``size``."""
    if isinstance(value, str):
        return head(value, size)
    if isinstance(value, list | tuple):
        return type(value)(bounded(v, size) for v in value)
    if isinstance(value, dict):
        return {bounded(k, size): bounded(v, size) for k, v in value.items()}
    return value


def printable(text: str, tabs: bool = False) -> str:
    """``text`` with every unprintable character written as Python writes it in a literal
    (``\\x1b``, ``\\x9b``, ``\\x7f``, ``\\u202e``, ``\\t``, ``\\r``): the C0 and C1 controls, DEL,
    bidi overrides, zero-width and other format characters (Unicode's Cf), surrogates,
    unassigned code points. Newlines stay, as line breaks: a multi-line message or hint is meant
    to be multi-line, and a newline moves no cursor out of a table cell; with ``tabs``, tabs
    stay too (a browser shows one as spaces; a terminal's table cell would be pushed by it).
    The result is also valid XML 1.0 text."""
    keep = "\t" if tabs else ""
    return "\n".join(
        line if line.isprintable() else "".join(c if c.isprintable() or c in keep else _escaped(c) for c in line)
        for line in text.split("\n")
    )


def _escaped(char: str) -> str:
    return ascii(char)[1:-1]


def shown(text: str, style: str = "") -> Text:
    """Student text for rich: its head, printable, as a ``Text`` so it is never read as console
    markup (``bad[/]name`` is a name, not a closing tag). A ``Text`` rather than markup-escaped
    text, because rich's markup parser takes time quadratic in a run of backslashes."""
    from rich.text import Text  # here: code that reads results (exports, reports) never loads rich

    return Text(printable(head(text)), style=style)
